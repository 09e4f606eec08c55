/**
 * Outside review AF (item 4). An action request (POST api/replay,
 * api/delete-dead, api/destroy) whose body passed the dashboard's 64 KiB
 * limit got no answer: readBody in dashboard/handler.ts called req.destroy(),
 * which reset the connection, so a client (the page's fetch, curl, a script)
 * saw "socket hang up" / ECONNRESET and never learnt why. Expected: HTTP 413
 * with a short JSON error, then the connection is closed (Connection: close);
 * a body within the limit is still read and handled as before.
 *
 * Failed before the fix: both over-limit cases (the request failed with a
 * connection error, read ECONNRESET, instead of a response); the case within
 * the limit passed.
 * Fixed: readBody rejects with BodyTooLarge (at once when Content-Length is
 * over the limit, else when the bytes read pass it), stops buffering and
 * drops the rest of the body; the handler answers it 413 with Connection: close.
 */
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sharedUrl } from './support/clients.js';
import { type ServedDashboard, serveDashboard } from './support/dashboard.js';

interface Answer {
  status: number;
  connection: string | undefined;
  body: string;
}

/** POSTs `chunks` to `url` as JSON (with Content-Length unless `chunked`); resolves with the answer, whatever happens to the upload after it. */
function post(url: string, chunks: Buffer[], chunked: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const length = chunks.reduce((n, c) => n + c.length, 0);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (!chunked) headers['Content-Length'] = String(length);
    let answered = false;
    const req = request(url, { method: 'POST', headers }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      res.on('error', reject);
    });
    // An upload cut once the answer came is fine; an error before any answer is the defect.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    for (const c of chunks) req.write(c);
    req.end();
  });
}

/** A JSON body of about `size` bytes: a replay of a stream that does not exist, padded. */
function jsonBody(size: number): Buffer {
  const head = '{"stream":"revaf-no-such-stream","pad":"';
  return Buffer.from(`${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`);
}

function split(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('dashboard: an action body over 64 KiB is answered 413', { timeout: 60_000 }, () => {
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    redis = new Redis(sharedUrl());
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
  });

  it('with Content-Length over the limit', async ({ expect }) => {
    const r = await post(`${dash.url}api/replay`, [jsonBody(1024 * 1024)], false);
    expect(r.status, r.body).toBe(413);
    expect(r.connection).toBe('close');
    expect((JSON.parse(r.body) as { error: string }).error).toMatch(/too large.*64 KiB/);
  });

  it('with a chunked body that passes the limit as it is read', async ({ expect }) => {
    const r = await post(`${dash.url}api/delete-dead`, split(jsonBody(256 * 1024), 16 * 1024), true);
    expect(r.status, r.body).toBe(413);
    expect(r.connection).toBe('close');
    expect((JSON.parse(r.body) as { error: string }).error).toMatch(/too large/);
  });

  it('still handles a body within the limit', async ({ expect }) => {
    const r = await post(`${dash.url}api/replay`, split(jsonBody(60 * 1024), 16 * 1024), true);
    // Read whole and handled: a replay of a stream without dead letters replays none.
    expect(r.status, r.body).toBe(200);
    expect(r.connection).not.toBe('close');
    expect(JSON.parse(r.body)).toEqual({ replayed: [] });
  });
});
