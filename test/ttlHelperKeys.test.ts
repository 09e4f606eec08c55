/**
 * The keys the library keeps beside a TTL stream go with it (outside review P). `stream.remove()`
 * wrote `{pulse:stream:<name>}:deleted` (and `:removed`, the counts sinks had not read yet) with
 * no expiry, and a `nack({ delayMs })` past the grace period wrote the sink's `:delays` set with
 * none: once a short-lived TTL stream expired they stayed for ever, one set per stream name. Now the
 * remove() keys expire with the stream, a minute at least (so that a sliding TTL that adds extend
 * does not drop them while a sink may still report from them), and the delays set at its last due
 * time, never before a delay ran out.
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

/** Fails with the keys of stream `name` that would never expire. */
async function noKeyForever(c: TestClient, name: string): Promise<void> {
  const forever: string[] = [];
  for (const k of await keysOf(c, name)) if (Number(await c.cmd('PTTL', k)) === -1) forever.push(k);
  expect(forever).toEqual([]);
}

describe.concurrent.each(CLIENT_KINDS)('bookkeeping keys of a TTL stream (%s)', (kind) => {
  for (const slidingTtl of [false, true]) {
    it(`remove() on a stream with a ${slidingTtl ? 'sliding' : 'fixed'} TTL: once it expired, its keys expire within a minute`, async (ctx: TestContext) => {
      const c = await connect(kind);
      ctx.onTestFinished(() => c.close());
      // A second: with 300 ms a loaded run's adds and remove() took longer, and remove() found the stream gone.
      const s = new Stream(uniqueName('ttlrm'), c.redis, { maxLen: 0, ttlMs: 1000, slidingTtl });
      cleanUp(ctx, c, s.name);
      // A sink that has not read them: the removed entries are counted for it (`:removed`).
      const sink = await s.newSink('g', { startAt: 'oldest' });
      await sink.close();
      const ids = [await s.add('e', '0'), await s.add('e', '1'), await s.add('e', '2')];
      await s.remove(ids[1] as string);
      const written = [lastRemovalKey(s.name), removedKey(s.name)];
      expect(await keysOf(c, s.name)).toEqual(expect.arrayContaining(written));
      await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { timeout: 5000, what: 'the stream to expire' });
      // A minute at most (the floor that keeps them while a sink may still report from them), never for ever.
      for (const k of written) expect(Number(await c.cmd('PTTL', k))).toBeLessThanOrEqual(60_000);
      await noKeyForever(c, s.name);
    });
  }

  it('remove() on a stream with a TTL longer than a minute: its keys expire when the stream does', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('ttlrm'), c.redis, { maxLen: 0, ttlMs: 600_000 });
    cleanUp(ctx, c, s.name);
    const sink = await s.newSink('g', { startAt: 'oldest' });
    await sink.close();
    const id = await s.add('e', '0');
    await s.remove(id);
    const at = Number(await c.cmd('PEXPIRETIME', s.key));
    for (const k of [lastRemovalKey(s.name), removedKey(s.name)]) {
      expect(Math.abs(Number(await c.cmd('PEXPIRETIME', k)) - at)).toBeLessThan(50);
    }
  });

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

  it('inProgress() of an event removed while handled: the delays set that holds it expires at the hold end', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    // Longer than the grace period: with 500 ms a loaded run found the stream expired before inProgress().
    const s = new Stream(uniqueName('ttlip'), c.redis, { maxLen: 0, ttlMs: 3000 });
    cleanUp(ctx, c, s.name);
    const graceMs = 1000;
    const sink = await s.newSink('g', { startAt: 'oldest', ackGracePeriodMs: graceMs, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    await s.add('e', 'x');
    const ev = (await sink.subscribe().next()).value as SinkEvent;
    await s.remove(ev.id);
    // Gone from the stream: held in the delays set for a grace period, so no claim reports it meanwhile.
    await ev.inProgress();
    const delays = (await keysOf(c, s.name)).filter((k) => k.endsWith(':delays'));
    expect(delays).toHaveLength(1);
    const pttl = Number(await c.cmd('PTTL', delays[0] as string));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(graceMs + 50);
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
    await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { timeout: 3000, what: 'the stream to expire' });
    await noKeyForever(c, s.name);
    await waitFor(async () => Number(await c.cmd('EXISTS', delays[0] as string)) === 0, {
      timeout: delayMs + 1000,
      what: 'the delays set to expire',
    });
  });
});
