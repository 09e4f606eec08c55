/**
 * Dead-letter actions with two operators at work, and reads a page of
 * another site asks for. Found by review C (revCdashboard):
 * - delete-dead said it deleted every ID it was sent, though another operator
 *   had replayed some meanwhile: it must say how many it deleted and which were gone;
 * - replay with a sink name that matches nothing answered 200 with nothing
 *   replayed, where the CLI refuses it: a typo must not pass for "no dead letters".
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedUrl, uniqueName } from './support/clients.js';
import { addDeadLetters, type ServedDashboard, serveDashboard } from './support/dashboard.js';

function post(base: ServedDashboard, path: string, body: unknown): Promise<Response> {
  return fetch(`${base.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe.concurrent('dashboard dead-letter actions with two operators', { timeout: 30_000 }, () => {
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

  const cleanup = (stream: string) => async () => {
    await redis.del(`pulse:stream:${stream}`, `pulse:stream:${stream}:dead`);
  };

  it('delete-dead reports the dead letters it deleted and the IDs already gone', async ({ onTestFinished }) => {
    const stream = uniqueName('del-dead');
    onTestFinished(cleanup(stream));
    const ids = await addDeadLetters(redis, stream, [
      { event: 'a', payload: '1', sink: 'billing', sourceId: '1-0' },
      { event: 'b', payload: '2', sink: 'billing', sourceId: '2-0' },
      { event: 'c', payload: '3', sink: 'billing', sourceId: '3-0' },
    ]);
    // Operator A replays two of them; operator B's page still lists all three and deletes them.
    expect((await post(dash, 'api/replay', { stream, ids: ids.slice(0, 2) })).status).toBe(200);
    const res = await post(dash, 'api/delete-dead', { stream, ids });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ deleted: 1, missing: ids.slice(0, 2) });
    expect(Number(await redis.call('XLEN', `pulse:stream:${stream}:dead`))).toBe(0);
    // The two replayed letters are in the stream: replayed, not deleted.
    expect(Number(await redis.call('XLEN', `pulse:stream:${stream}`))).toBe(2);
  });

  it('replay of a sink the stream does not have, with no dead letters from it, is refused as the CLI does', async ({
    onTestFinished,
  }) => {
    const stream = uniqueName('replay-sink');
    onTestFinished(cleanup(stream));
    await addDeadLetters(redis, stream, [{ event: 'a', payload: '1', sink: 'billing', sourceId: '1-0' }]);
    const res = await post(dash, 'api/replay', { stream, sink: 'biling' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/has no sink "biling" and no dead letters from one/);
    expect(Number(await redis.call('XLEN', `pulse:stream:${stream}:dead`))).toBe(1);
    // The sink's own name replays its letter.
    const ok = await post(dash, 'api/replay', { stream, sink: 'billing' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { replayed: string[] }).replayed).toHaveLength(1);
  });
});
