/**
 * The keys the library keeps beside a TTL stream go with it (outside review P). `stream.remove()`
 * wrote `{pulse:stream:<name>}:deleted` (and `:removed`, the counts sinks had not read yet) with
 * no expiry, and a `nack({ delayMs })` past the grace period wrote the sink's `:delays` set with
 * none: once a short-lived TTL stream expired they stayed for ever, one set per stream name. Now the
 * remove() keys expire with the stream (following a sliding TTL while a sink reads it), and the
 * delays set at its last due time, never before a delay ran out.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { lastRemovalKey, removedKey } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

/** Every bookkeeping key of stream `name` (they share the `{pulse:stream:<name>}` prefix). */
async function keysOf(c: TestClient, name: string): Promise<string[]> {
  return ((await c.cmd('KEYS', `{pulse:stream:${name}}:*`)) as unknown[]).map(String).sort();
}

/** Deletes whatever of stream `name` is left when the test ends. */
function cleanUp(ctx: TestContext, c: TestClient, name: string): void {
  ctx.onTestFinished(async () => {
    await c.cmd('DEL', `pulse:stream:${name}`, `pulse:stream:${name}:lifecycle`, ...(await keysOf(c, name)));
  });
}

/**
 * Waits until stream `name` expired, then until none of the keys `written` (suffixes) is left
 * (within `timeout` ms); fails with the keys left, and with any key of the stream that would never
 * expire (a sink's keys may stay a bounded while: they keep a floor between two sweeps).
 */
async function goneAfterExpiry(c: TestClient, name: string, written: string[], timeout: number): Promise<void> {
  await waitFor(async () => Number(await c.cmd('EXISTS', `pulse:stream:${name}`)) === 0, {
    timeout: 3000,
    what: 'the stream to expire',
  });
  let left: string[] = [];
  await waitFor(
    async () => {
      left = (await keysOf(c, name)).filter((k) => written.some((w) => k.endsWith(w)));
      return left.length === 0;
    },
    { timeout, what: `no ${written.join(', ')} key left` },
  ).catch(() => {});
  expect(left).toEqual([]);
  const forever: string[] = [];
  for (const k of await keysOf(c, name)) if (Number(await c.cmd('PTTL', k)) === -1) forever.push(k);
  expect(forever).toEqual([]);
}

describe.concurrent.each(CLIENT_KINDS)('bookkeeping keys of a TTL stream (%s)', (kind) => {
  for (const slidingTtl of [false, true]) {
    it(`remove() on a stream with a ${slidingTtl ? 'sliding' : 'fixed'} TTL: its keys expire with the stream`, async (ctx: TestContext) => {
      const c = await connect(kind);
      ctx.onTestFinished(() => c.close());
      const s = new Stream(uniqueName('ttlrm'), c.redis, { maxLen: 0, ttlMs: 500, slidingTtl });
      cleanUp(ctx, c, s.name);
      // A sink that has not read them: the removed entries are counted for it (`:removed`).
      const sink = await s.newSink('g', { startAt: 'oldest' });
      await sink.close();
      const ids = [await s.add('e', '0'), await s.add('e', '1'), await s.add('e', '2')];
      await s.remove(ids[1] as string);
      expect(await keysOf(c, s.name)).toEqual(expect.arrayContaining([lastRemovalKey(s.name), removedKey(s.name)]));
      // With the stream: the remove() keys follow its expiry.
      await goneAfterExpiry(c, s.name, [':deleted', ':removed'], 500);
    });
  }

  it('a sliding TTL that adds extend keeps the remove() keys while a sink reads the stream', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('ttlrm'), c.redis, { maxLen: 0, ttlMs: 400, slidingTtl: true });
    cleanUp(ctx, c, s.name);
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 50 });
    ctx.onTestFinished(() => sink.close());
    const events = sink.subscribe();
    const first = await s.add('e', '0');
    await s.remove(first);
    // Adds keep the stream alive for three times its TTL; the sink reads (and checks) each one.
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      await s.add('e', 'more');
      const got = await events.next();
      await (got.value as SinkEvent).ack();
    }
    expect(Number(await c.cmd('EXISTS', lastRemovalKey(s.name)))).toBe(1);
    expect(Number(await c.cmd('PTTL', lastRemovalKey(s.name)))).toBeGreaterThan(0);
  });

  it('nack({ delayMs }) past the grace period: the delays set expires at its due time, after the stream', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('ttlnk'), c.redis, { maxLen: 0, ttlMs: 500 });
    cleanUp(ctx, c, s.name);
    const sink = await s.newSink('g', { startAt: 'oldest', ackGracePeriodMs: 300, blockMs: 100 });
    await s.add('e', 'x');
    const first = await sink.subscribe().next();
    const delayMs = 1500;
    const nackedAt = Date.now();
    await (first.value as SinkEvent).nack({ delayMs });
    await sink.close();
    const delays = (await keysOf(c, s.name)).filter((k) => k.endsWith(':delays'));
    expect(delays).toHaveLength(1);
    const pttl = Number(await c.cmd('PTTL', delays[0] as string));
    // It expires when the delay runs out, not sooner (nothing delayed is cut short).
    expect(pttl).toBeGreaterThan(delayMs - (Date.now() - nackedAt) - 100);
    expect(pttl).toBeLessThanOrEqual(delayMs + 50);
    await goneAfterExpiry(c, s.name, [':delays'], delayMs + 1000);
  });
});
