/**
 * The dashboard's dead-letter actions and IDs in other forms: delete-dead
 * counted one letter named as "5-1" and "05-1" as two deleted, and a replay
 * of "7" (7-0, absent) replayed 7-1 and 7-2 (the library read every letter of
 * millisecond 7). Outside review F of this session's exact delete counts; the
 * IDs are taken in their canonical form now (deadLetterIdForms.test.ts for
 * the library).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedUrl, uniqueName } from './support/clients.js';
import { type ServedDashboard, serveDashboard } from './support/dashboard.js';
import { deadLetterFields } from './support/deadLetterFields.js';

function post(base: ServedDashboard, path: string, body: unknown): Promise<Response> {
  return fetch(`${base.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('dashboard dead-letter actions and ID forms', { timeout: 30_000 }, () => {
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

  it('delete-dead of one letter named in two forms says 1 deleted', async ({ onTestFinished }) => {
    const stream = uniqueName('delforms');
    const dead = `pulse:stream:${stream}:dead`;
    onTestFinished(async () => void (await redis.del(`pulse:stream:${stream}`, dead)));
    await redis.xadd(dead, '5-1', ...deadLetterFields(stream, 1));
    const res = await post(dash, 'api/delete-dead', { stream, ids: ['5-1', '05-1'] });
    expect(res.status).toBe(200);
    expect({ body: await res.json(), left: await redis.xlen(dead) }).toEqual({ body: { deleted: 1, missing: [] }, left: 0 });
  });

  it('replay of "7" (7-0, absent) replays nothing', async ({ onTestFinished }) => {
    const stream = uniqueName('replayms');
    const dead = `pulse:stream:${stream}:dead`;
    onTestFinished(async () => void (await redis.del(`pulse:stream:${stream}`, dead)));
    await redis.xadd(dead, '7-1', ...deadLetterFields(stream, 1));
    await redis.xadd(dead, '7-2', ...deadLetterFields(stream, 2));
    const res = await post(dash, 'api/replay', { stream, ids: ['7'] });
    const body = (await res.json()) as { replayed?: string[] };
    expect({ replayed: body.replayed?.length, dead: await redis.xlen(dead) }).toEqual({ replayed: 0, dead: 2 });
  });
});
