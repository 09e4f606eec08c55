/**
 * Idempotent publish on a stream with a sliding TTL shorter than the dedup window (outside review
 * P). The dedup records used to get the stream's expiry time at the dedup add; later adds extended
 * the stream and not them, so they expired while the stream and the first event lived on, and a
 * retry of the same dedupId added a duplicate. Now they live their window, and an add that finds
 * the stream they were written for gone (expired, maybe created again since) drops them first, so
 * an expired stream created again never answers with an ID of the old one.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { dedupKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

const TTL_MS = 400;

/** A sliding-TTL stream with a long dedup window, destroyed (with its Go record) when the test ends. */
async function slidingStream(ctx: TestContext, kind: (typeof CLIENT_KINDS)[number]): Promise<{ c: TestClient; s: Stream }> {
  const c = await connect(kind);
  ctx.onTestFinished(() => c.close());
  const s = new Stream(uniqueName('ddsl'), c.redis, { ttlMs: TTL_MS, slidingTtl: true, dedupWindowMs: 120_000, maxLen: 0 });
  ctx.onTestFinished(async () => {
    await s.destroy();
    await c.cmd('DEL', `pulse:stream:${s.name}:lifecycle`);
  });
  return { c, s };
}

/** Adds without a dedupId for `ms`, so the stream lives on past its first expiry. */
async function keepAlive(s: Stream, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await s.add('other', 'filler');
    await new Promise((r) => setTimeout(r, TTL_MS / 4));
  }
}

async function streamGone(c: TestClient, s: Stream): Promise<void> {
  await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { timeout: 3000, what: 'the stream to expire' });
}

describe.concurrent.each(CLIENT_KINDS)('dedup on a sliding-TTL stream (%s)', (kind) => {
  it('a retry within the window adds nothing while other adds keep the stream alive', async (ctx: TestContext) => {
    const { c, s } = await slidingStream(ctx, kind);
    const first = await s.add('order.created', 'x', { dedupId: 'order-1' });
    // The records live their window, not the stream's TTL as it was at the dedup add.
    expect(Number(await c.cmd('PTTL', dedupKeys(s.name).current))).toBeGreaterThan(60_000);
    await keepAlive(s, 2 * TTL_MS);
    expect(await c.cmd('XRANGE', s.key, first, first)).toHaveLength(1);
    expect(await s.add('order.created', 'x', { dedupId: 'order-1' })).toBe(first);
    expect(Number(await c.cmd('XLEN', s.key))).toBeGreaterThan(1);
    const ids = ((await c.cmd('XRANGE', s.key, '-', '+')) as [string, string[]][]).filter(([, f]) => f[1] === 'order.created');
    expect(ids.map(([id]) => id)).toEqual([first]);
  });

  it('a retry still adds nothing once the recorded event was removed from the living stream', async (ctx: TestContext) => {
    const { s } = await slidingStream(ctx, kind);
    const first = await s.add('e', 'x', { dedupId: 'k' });
    await s.add('other', 'later');
    await s.remove(first);
    await keepAlive(s, 2 * TTL_MS);
    expect(await s.add('e', 'x', { dedupId: 'k' })).toBe(first);
  });

  it('once the stream expired, the same dedupId adds to the new one, also when other adds created it first', async (ctx: TestContext) => {
    const { c, s } = await slidingStream(ctx, kind);
    const keys = dedupKeys(s.name);
    const first = await s.add('e', '1', { dedupId: 'k' });
    await streamGone(c, s);
    // The records outlived the stream (their window is longer than its TTL)...
    expect(Number(await c.cmd('EXISTS', keys.current))).toBe(1);
    // ...but an add without a dedupId creates the stream again: they are of its earlier life.
    await s.add('other', 'new life');
    const again = await s.add('e', '2', { dedupId: 'k' });
    expect(again).not.toBe(first);
    expect(await c.cmd('XRANGE', s.key, again, again)).toEqual([[again, ['n', 'e', 'p', '2']]]);
    // And from now on the new records hold.
    expect(await s.add('e', '3', { dedupId: 'k' })).toBe(again);
  });

  it('once the stream expired, a dedup add finds it gone and adds', async (ctx: TestContext) => {
    const { c, s } = await slidingStream(ctx, kind);
    const first = await s.add('e', '1', { dedupId: 'k' });
    await streamGone(c, s);
    const again = await s.add('e', '2', { dedupId: 'k' });
    expect(again).not.toBe(first);
    expect(Number(await c.cmd('XLEN', s.key))).toBe(1);
  });
});
