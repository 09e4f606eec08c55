/**
 * The dashboard's HTTP surface against real Redis: `/metrics` read by a
 * Prometheus text parser and compared with XINFO, the JSON API (paging over
 * 10,000 streams, 1 MB payloads cut to a preview with the whole one on
 * demand), and who may act (read-only, token, other origins).
 */

import { request } from 'node:http';
import { Redis } from 'ioredis';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { InvalidArgumentError } from 'pulse-streaming';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { createDashboard } from '../packages/pulse-streaming-cli/src/dashboard/index.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';
import { addDeadLetters, getJson, groupsOf, type ServedDashboard, serveDashboard } from './support/dashboard.js';
import { RedisServer } from './support/redisServer.js';

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

function post(base: ServedDashboard, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function xinfo(stream: string): Promise<Record<string, unknown>> {
  const flat = (await redis.call('XINFO', 'STREAM', `pulse:stream:${stream}`)) as unknown[];
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

describe('/metrics', () => {
  it('parses as Prometheus text with the names of API.md, and matches XINFO', async () => {
    const prefix = uniqueName('metrics');
    // A name with a quote and a backslash: label values must be escaped.
    const orders = new Stream(`${prefix}-or"d\\ers`, redis, { maxLen: 5 });
    for (let i = 0; i < 9; i++) await orders.add('created', String(i));
    const billing = await orders.newSink('billing', { startAt: 'oldest' });
    const it = billing.subscribe()[Symbol.asyncIterator]();
    await it.next(); // the sink read: some entries are pending
    await orders.add('created', 'late');
    await addDeadLetters(redis, orders.name, [
      { event: 'e', payload: '1', sink: 'billing', sourceId: '1-0' },
      { event: 'e', payload: '2', sink: 'billing', sourceId: '2-0' },
    ]);
    const quiet = new Stream(`${prefix}-quiet`, redis);
    await quiet.add('e', 'x');

    const res = await fetch(`${dash.url}metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const families = parsePrometheusTextFormat(text);
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ['pulse_stream_length', 'GAUGE'],
      ['pulse_stream_entries_added_total', 'COUNTER'],
      ['pulse_sink_lag', 'GAUGE'],
      ['pulse_sink_pending', 'GAUGE'],
      ['pulse_sink_consumers', 'GAUGE'],
      ['pulse_dead_letters', 'GAUGE'],
    ]);
    const value = (family: string, labels: Record<string, string>): number | undefined => {
      const f = families.find((x) => x.name === family);
      const m = f?.metrics.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels));
      return m === undefined ? undefined : Number(m.value);
    };
    const [info, [group], quietInfo] = await Promise.all([xinfo(orders.name), groupsOf(redis, orders.name), xinfo(quiet.name)]);
    const s = { stream: orders.name };
    expect(value('pulse_stream_length', s)).toBe(Number(info.length));
    expect(value('pulse_stream_entries_added_total', s)).toBe(10);
    expect(value('pulse_stream_entries_added_total', s)).toBe(Number(info['entries-added']));
    expect(value('pulse_sink_lag', { ...s, sink: 'billing' })).toBe(Number(group?.lag));
    expect(value('pulse_sink_pending', { ...s, sink: 'billing' })).toBe(Number(group?.pending));
    expect(Number(group?.pending)).toBeGreaterThan(0);
    expect(value('pulse_sink_consumers', { ...s, sink: 'billing' })).toBe(Number(group?.consumers));
    expect(value('pulse_dead_letters', s)).toBe(2);
    expect(value('pulse_stream_length', { stream: `${orders.name}:dead` })).toBe(2);
    expect(value('pulse_stream_length', { stream: quiet.name })).toBe(Number(quietInfo.length));
    expect(value('pulse_dead_letters', { stream: quiet.name })).toBe(0);
    expect(value('pulse_sink_lag', { stream: quiet.name, sink: 'billing' })).toBeUndefined();
    await billing.close();
  });
});

describe('JSON API', () => {
  it('pages and searches 10,000 streams on the server', async () => {
    const server = await RedisServer.start();
    const own = new Redis(server.url);
    const served = await serveDashboard({ redis: own });
    try {
      const pipeline = own.pipeline();
      for (let i = 0; i < 10_000; i++)
        pipeline.xadd(`pulse:stream:s-${String(i).padStart(5, '0')}`, '*', 'n', 'e', 'p', String(i));
      await pipeline.exec();
      type Page = { total: number; page: number; names: string[]; streams: { name: string; length: number }[] };
      const first = await getJson<Page>(served, 'api/overview?size=50');
      expect(first.body.total).toBe(10_000);
      expect(first.body.streams).toHaveLength(50);
      expect(first.body.streams[0]).toMatchObject({ name: 's-00000', length: 1 });
      const last = await getJson<Page>(served, 'api/overview?size=50&page=199');
      expect(last.body.streams.map((s) => s.name).at(-1)).toBe('s-09999');
      const found = await getJson<Page>(served, 'api/overview?q=S-0123');
      expect(found.body.names).toEqual(Array.from({ length: 10 }, (_, i) => `s-0123${i}`));
      // A scrape covers every stream.
      const started = performance.now();
      const metrics = await (await fetch(`${served.url}metrics`)).text();
      console.log(`/metrics of 10,000 streams: ${Math.round(performance.now() - started)} ms, ${metrics.length} bytes`);
      expect(metrics.match(/^pulse_stream_length\{/gm)).toHaveLength(10_000);
    } finally {
      await served.close();
      own.disconnect();
      await server.stop();
    }
  });

  it('sends a 1 MB payload as a preview, the whole one on demand, and bytes as base64', async () => {
    const stream = new Stream(uniqueName('big'), redis);
    const big = 'é'.repeat(512 * 1024); // 1 MiB of two-byte characters
    const bigId = await stream.add('big', big);
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    await stream.add('bytes', bytes);
    type Entries = {
      entries: { id: string; event: string; payload: { size: number; truncated: boolean; text?: string; base64?: string } }[];
    };
    const { body } = await getJson<Entries>(dash, `api/entries?name=${encodeURIComponent(stream.name)}`);
    expect(body.entries.map((e) => e.event)).toEqual(['bytes', 'big']);
    expect(body.entries[0]?.payload).toEqual({ size: 5, truncated: false, base64: bytes.toString('base64') });
    const preview = body.entries[1]?.payload;
    expect(preview).toMatchObject({ size: 1024 * 1024, truncated: true });
    expect(preview?.text).toBe('é'.repeat(1024)); // cut on a character boundary
    const whole = await getJson<Entries['entries'][number]>(
      dash,
      `api/entry?name=${encodeURIComponent(stream.name)}&id=${bigId}`,
    );
    expect(whole.body.payload).toEqual({ size: 1024 * 1024, truncated: false, text: big });
  });

  it('reads no whole payload for the overview, a stream page, entries, dead letters or /metrics (1 MB payloads stay in Redis)', async () => {
    const server = await RedisServer.start();
    const own = new Redis(server.url);
    const served = await serveDashboard({ redis: own });
    try {
      const big = Buffer.alloc(1024 * 1024, 'x');
      for (let i = 0; i < 10; i++) {
        const s = new Stream(`big-${i}`, own);
        await s.add('first', big);
        await s.add('last', big);
      }
      await addDeadLetters(own, 'big-0', [{ event: 'dead', payload: big.toString(), sink: 's', sourceId: '1-0' }]);
      const sent = async (): Promise<number> => Number(/total_net_output_bytes:(\d+)/.exec(await own.info('stats'))?.[1]);
      const before = await sent();
      type Overview = { streams: { name: string; length: number; lastId: string }[] };
      const { body } = await getJson<Overview>(served, 'api/overview');
      expect(body.streams.map((s) => [s.name, s.length])).toEqual([
        ['big-0', 2],
        ['big-0:dead', 1],
        ...Array.from({ length: 9 }, (_, i) => [`big-${i + 1}`, 2]),
      ]);
      const page = await getJson<{ firstId: string; lastId: string; length: number }>(served, 'api/stream?name=big-0');
      expect(page.body).toMatchObject({
        length: 2,
        firstId: expect.stringMatching(/^\d+-\d+$/),
        lastId: body.streams[0]?.lastId,
      });
      await fetch(`${served.url}metrics`).then((r) => r.text());
      // The entries page cuts payloads in Redis: a preview of each, and the whole size.
      type Entries = { entries: { event: string; payload: { size: number; truncated: boolean; text: string } }[] };
      const entries = await getJson<Entries>(served, 'api/entries?name=big-0');
      expect(entries.body.entries.map((e) => [e.event, e.payload.size, e.payload.truncated, e.payload.text.length])).toEqual([
        ['last', 1024 * 1024, true, 2048],
        ['first', 1024 * 1024, true, 2048],
      ]);
      type Dead = { letters: { event: string; sourceSink: string; payload: { size: number; truncated: boolean } }[] };
      const dead = await getJson<Dead>(served, 'api/dead?name=big-0');
      expect(dead.body.letters).toMatchObject([
        { event: 'dead', sourceSink: 's', payload: { size: 1024 * 1024, truncated: true } },
      ]);
      // Ten streams of two 1 MB entries: reading any entry would send megabytes.
      expect((await sent()) - before).toBeLessThan(100_000);
    } finally {
      await served.close();
      own.disconnect();
      await server.stop();
    }
  });

  it('api/dead-head: 0 and null while a stream has no dead letters, then the length and last ID', async () => {
    const name = uniqueName('dash-deadhead');
    expect((await getJson(dash, `api/dead-head?name=${name}`)).body).toEqual({ length: 0, lastId: null });
    const [, last] = await addDeadLetters(redis, name, [
      { event: 'e', payload: 'a', sink: 's', sourceId: '1-0' },
      { event: 'e', payload: 'b', sink: 's', sourceId: '2-0' },
    ]);
    expect((await getJson(dash, `api/dead-head?name=${name}`)).body).toEqual({ length: 2, lastId: last });
    expect((await getJson(dash, 'api/dead-head?name=')).status).toBe(400);
    await redis.del(`pulse:stream:${name}:dead`);
  });

  it('pages entries newest first', async () => {
    const stream = new Stream(uniqueName('paged'), redis, { maxLen: 0 });
    for (let i = 0; i < 7; i++) await stream.add(`e${i}`, String(i));
    type Entries = { entries: { id: string; event: string }[]; next: string | null };
    const name = encodeURIComponent(stream.name);
    const p1 = await getJson<Entries>(dash, `api/entries?name=${name}&count=3`);
    expect(p1.body.entries.map((e) => e.event)).toEqual(['e6', 'e5', 'e4']);
    const p2 = await getJson<Entries>(dash, `api/entries?name=${name}&count=3&before=${p1.body.next}`);
    expect(p2.body.entries.map((e) => e.event)).toEqual(['e3', 'e2', 'e1']);
    const p3 = await getJson<Entries>(dash, `api/entries?name=${name}&count=3&before=${p2.body.next}`);
    expect(p3.body).toMatchObject({ entries: [{ event: 'e0' }], next: null });
  });

  it('answers bad requests with 400 and missing things with 404', async () => {
    expect((await getJson(dash, 'api/stream')).status).toBe(400);
    expect((await getJson(dash, `api/stream?name=${uniqueName('absent')}`)).status).toBe(404);
    expect((await getJson(dash, 'api/entries?name=x&before=nope')).status).toBe(400);
    expect((await getJson(dash, 'api/overview?size=0')).status).toBe(400);
    expect((await getJson(dash, 'api/live?view=overview&page=-1')).status).toBe(400);
    expect((await getJson(dash, 'api/live?view=stream')).status).toBe(400);
    expect((await getJson(dash, 'api/tail?name=has%20space')).status).toBe(400);
    expect((await getJson(dash, `api/pending?name=${uniqueName('absent')}&sink=s`)).status).toBe(404);
    expect((await getJson(dash, 'api/nothing')).status).toBe(404);
    for (const inherited of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect((await getJson(dash, inherited)).status).toBe(404);
      expect((await post(dash, inherited, {})).status).toBe(404);
    }
    expect((await fetch(`${dash.url}api/replay`)).status).toBe(405);
    // The page is read, never posted to.
    expect((await post(dash, '', {})).status).toBe(405);
    expect((await getJson(dash, 'api/live?view=zzz')).status).toBe(400);
  });

  it('refuses an entry ID past what Redis takes with a 400 naming the parameter (it was a 500 on some routes)', async () => {
    const huge = '99999999999999999999999-0';
    const stream = new Stream(uniqueName('hugeid'), redis);
    await stream.add('e', 'x');
    const q = `name=${stream.name}`;
    for (const [path, param] of [
      [`api/entries?${q}&before=${huge}`, 'before'],
      [`api/entry?${q}&id=${huge}`, 'id'],
      [`api/dead?${q}&after=${huge}`, 'after'],
      [`api/pending?${q}&sink=s&after=${huge}`, 'after'],
      [`api/dead-letter?${q}&id=${huge}`, 'id'],
      [`api/tail?${q}&after=${huge}`, 'after'],
    ] as const) {
      const r = await getJson<{ error: string }>(dash, path);
      expect([r.status, r.body.error.startsWith(`${param} `)], `${path}: ${r.body.error}`).toEqual([400, true]);
    }
    for (const action of ['api/delete-dead', 'api/replay'])
      expect((await post(dash, action, { stream: stream.name, ids: [huge] })).status).toBe(400);
    await stream.destroy();
  });

  it('takes a request target that starts with // as a path, not as a host (outside trial)', async () => {
    const served = await serveDashboard({ redis, token: 't0k' });
    try {
      const stream = new Stream(uniqueName('slashes'), redis);
      await stream.add('e', 'x');
      const port = new URL(served.url).port;
      const raw = (method: string, path: string, body?: string) =>
        new Promise<{ status: number; csp: unknown }>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              method,
              path,
              headers: { 'Content-Type': 'application/json', Authorization: 'Bearer t0k', Origin: served.url.slice(0, -1) },
            },
            (res) => {
              res.resume();
              resolve({ status: res.statusCode ?? 0, csp: res.headers['content-security-policy'] });
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      // Resolved against a base, this was the URL of host public.example, routed as /api/destroy: it destroyed the stream.
      const destroy = await raw('POST', '//public.example/api/destroy', JSON.stringify({ stream: stream.name }));
      expect(destroy.status).toBe(404);
      expect(Number(await redis.exists(`pulse:stream:${stream.name}`))).toBe(1);
      expect((await raw('GET', '//x/metrics')).status).toBe(404);
      // These threw "Invalid URL" (500, without the security headers).
      for (const path of ['//%2Fx', '//[']) {
        const r = await raw('GET', path);
        expect(r.status, path).toBeLessThan(500);
        expect(r.csp, path).toBeDefined();
      }
      await stream.destroy();
    } finally {
      await served.close();
    }
  });

  it('refuses a node-redis client with a clear error (it takes ioredis clients)', async () => {
    const { createClient } = await import('redis');
    expect(() => createDashboard({ redis: createClient() as never })).toThrow(/ioredis Redis or Cluster/);
  });

  it('refuses bad options before any Redis call', () => {
    expect(() => createDashboard({} as never)).toThrow(InvalidArgumentError);
    expect(() => createDashboard({ redis, token: '' })).toThrow(InvalidArgumentError);
    expect(() => createDashboard({ redis, basePath: 'dash' })).toThrow(InvalidArgumentError);
  });

  it('serves the front end gzipped, with a content security policy', async () => {
    const page = await fetch(dash.url);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('assets/app.js');
    const js = await fetch(`${dash.url}assets/app.js`, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  });
});

describe('actions', () => {
  async function deadLetter(): Promise<{ stream: string; id: string }> {
    const stream = new Stream(uniqueName('act'), redis);
    await stream.add('e', 'x');
    const [id] = await addDeadLetters(redis, stream.name, [{ event: 'e', payload: 'p', sink: 's', sourceId: '1-0' }]);
    return { stream: stream.name, id: id as string };
  }
  const deadCount = async (stream: string): Promise<number> => Number(await redis.call('XLEN', `pulse:stream:${stream}:dead`));

  it('refuse what another origin could send', async () => {
    const { stream, id } = await deadLetter();
    const body = JSON.stringify({ stream, ids: [id] });
    // A form post or a "simple" fetch: no JSON content type.
    const form = await fetch(`${dash.url}api/replay`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body });
    expect(form.status).toBe(415);
    expect((await post(dash, 'api/replay', { stream }, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(dash, 'api/replay', { stream }, { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    expect((await post(dash, 'api/replay', { stream }, { 'Sec-Fetch-Site': 'same-site' })).status).toBe(403);
    expect(await deadCount(stream)).toBe(1);
    // Behind a proxy that rewrites Host, the browser's host comes as X-Forwarded-Host.
    const proxied = await post(
      dash,
      'api/replay',
      { stream, ids: ['0-1'] },
      {
        Origin: 'https://dashboard.example',
        'X-Forwarded-Host': 'dashboard.example',
      },
    );
    expect(proxied.status).toBe(200);
    const sameOrigin = await post(
      dash,
      'api/replay',
      { stream, ids: [id] },
      { Origin: dash.url.slice(0, -1), 'Sec-Fetch-Site': 'same-origin' },
    );
    expect(sameOrigin.status).toBe(200);
    expect(await deadCount(stream)).toBe(0);
  });

  it('need the token when one is set', async () => {
    const served = await serveDashboard({ redis, token: 's3cret' });
    try {
      const { stream, id } = await deadLetter();
      expect((await post(served, 'api/delete-dead', { stream, ids: [id] })).status).toBe(401);
      expect((await post(served, 'api/delete-dead', { stream, ids: [id] }, { Authorization: 'Bearer wrong' })).status).toBe(401);
      expect((await post(served, 'api/delete-dead', { stream, ids: [id] }, { Authorization: 's3cret' })).status).toBe(401);
      expect(await deadCount(stream)).toBe(1);
      const ok = await post(served, 'api/delete-dead', { stream, ids: [id] }, { Authorization: 'Bearer s3cret' });
      expect(await ok.json()).toEqual({ deleted: 1, missing: [] });
      expect(await deadCount(stream)).toBe(0);
      expect((await getJson(served, 'api/config')).body).toEqual({ readOnly: false, tokenRequired: true });
    } finally {
      await served.close();
    }
  });

  it('are all refused in read-only mode, token or not', async () => {
    const served = await serveDashboard({ redis, readOnly: true, token: 't' });
    try {
      const { stream, id } = await deadLetter();
      const auth = { Authorization: 'Bearer t' };
      expect((await post(served, 'api/replay', { stream }, auth)).status).toBe(403);
      expect((await post(served, 'api/delete-dead', { stream, ids: [id] }, auth)).status).toBe(403);
      expect((await post(served, 'api/destroy', { stream }, auth)).status).toBe(403);
      expect(await deadCount(stream)).toBe(1);
      expect(Number(await redis.call('EXISTS', `pulse:stream:${stream}`))).toBe(1);
    } finally {
      await served.close();
    }
  });

  it('replay, delete and destroy through the library', async () => {
    const { stream, id } = await deadLetter();
    const replayed = await post(dash, 'api/replay', { stream, ids: [id] });
    const { replayed: ids } = (await replayed.json()) as { replayed: string[] };
    expect(ids).toHaveLength(1);
    expect(Number(await redis.call('XLEN', `pulse:stream:${stream}`))).toBe(2);
    expect((await post(dash, 'api/destroy', { stream })).status).toBe(200);
    expect(Number(await redis.call('EXISTS', `pulse:stream:${stream}`))).toBe(0);
    expect((await post(dash, 'api/destroy', { stream })).status).toBe(404);
    expect((await post(dash, 'api/delete-dead', { stream, ids: ['nope'] })).status).toBe(400);
  });
});

describe('live tail', () => {
  /** Reads an event stream until `until` matches what arrived. */
  async function readUntil(res: Response, until: RegExp): Promise<string> {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!until.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`event stream ended: ${text}`);
      text += Buffer.from(value).toString('utf8');
    }
    reader.releaseLock();
    return text;
  }

  it('closes its reader when the page goes away, and on close()', async () => {
    const server = await RedisServer.start();
    const own = new Redis(server.url);
    const served = await serveDashboard({ redis: own });
    // The library names the reader's blocking connection pulse:reader:<stream>.
    const clients = async (): Promise<number> =>
      String(await own.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((l) => l.includes('name=pulse:reader:tailed ')).length;
    try {
      const stream = new Stream('tailed', own);
      const idle = 0;
      const page = new AbortController();
      const res = await fetch(`${served.url}api/tail?name=tailed`, { signal: page.signal });
      await readUntil(res, /event: ready/);
      await stream.add('e', 'one');
      expect(await readUntil(res, /event: entries\ndata: .*"one"/)).toContain('"event":"e"');
      expect(await clients()).toBeGreaterThan(idle);
      page.abort();
      await waitFor(async () => (await clients()) === idle, { what: 'the reader connection closed' });

      const again = await fetch(`${served.url}api/tail?name=tailed`);
      await readUntil(again, /event: ready/);
      expect(await clients()).toBeGreaterThan(idle);
      await served.handler.close();
      await waitFor(async () => (await clients()) === idle, { what: 'the reader connection closed by close()' });
    } finally {
      await served.close();
      own.disconnect();
      await server.stop();
    }
  });
});
