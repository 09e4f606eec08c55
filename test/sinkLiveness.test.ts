/**
 * Sink-wide liveness (issue 20 redesign, review findings), with both
 * clients: a crashed instance's events are redelivered within 2 x grace
 * though it still counts as live when they turn idle; a stuck `for await`
 * loop does not take its own events back until they are dead-lettered.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { PulseError, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys, sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const WAIT = { timeout: 15_000 };

/** Adds an event and reads it as consumer `consumer` of `group` in one step: no other consumer can read it first. */
const ADD_AND_READ = `local id = redis.call('XADD', KEYS[1], '*', 'type', 'x', 'payload', 'y')
redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 10, 'STREAMS', KEYS[1], '>')
return id`;

/** Takes every event of `sub` in the background, acking each; returns what it got, with when. */
function drain(sub: AsyncIterable<SinkEvent>): Array<{ id: string; at: number; n: number }> {
  const got: Array<{ id: string; at: number; n: number }> = [];
  void (async () => {
    for await (const ev of sub) {
      got.push({ id: ev.id, at: Date.now(), n: ev.deliveryCount });
      await ev.ack();
    }
  })().catch(() => {});
  return got;
}

/**
 * Waits for the first event of `got`: it must be `id`, handed out within
 * 2 x grace of `since` (with a little slack for a loaded machine).
 */
async function firstWithinTwoGraces(
  got: ReadonlyArray<{ id: string; at: number }>,
  id: string,
  since: number,
  grace: number,
  what: string,
): Promise<void> {
  await waitFor(() => got.length > 0, { ...WAIT, what });
  expect(got[0]?.id).toBe(id);
  expect((got[0]?.at ?? 0) - since).toBeLessThan(2 * grace + 300);
}

describe.concurrent.each(CLIENT_KINDS)('sink liveness (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'live');

  it('a crashed instance whose last liveness call was half a sweep before the crash: its events within 2 x grace (review finding 1)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 1000;
    const name = uniqueName('sk');
    const a = await f.sink(s, { ackGracePeriodMs: grace }, name);
    const got = drain(a.subscribe());
    // Past the start's sweeps.
    await new Promise((r) => setTimeout(r, 2 * grace));
    // Instance B: its last liveness call 500 ms ago (half a grace period:
    // it would have made its next one now), then it reads an event and
    // crashes. A sees it stale 500 ms from now, before the event is idle.
    const [sec, us] = (await c.cmd('TIME')) as [string, string];
    const now = Number(sec) * 1000 + Math.floor(Number(us) / 1000);
    await c.cmd('ZADD', sinkWideKeys(name).instances, now - grace / 2, 'B');
    const id = String(await c.cmd('EVAL', ADD_AND_READ, 1, s.key, name, 'B'));
    const crash = Date.now();
    // It took the backstop, 10 s, before.
    await firstWithinTwoGraces(got, id, crash, grace, "the crashed instance's event");
  }, 30_000);

  it('a stuck for-await loop: its events go to another instance, not back to it until dead-lettered (review finding 2)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 1000;
    const name = uniqueName('sk');
    const opts = { ackGracePeriodMs: grace, maxDeliveries: 3 };
    const b = await f.sink(s, opts, name);
    const bsub = b.subscribe();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.add('x', `y${i}`)) as string);
    // B's loop is stuck on its first event from here on, the others in its buffer.
    const first = await bsub.next();
    expect(first.done).toBe(false);
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, name)) as unknown[])[0]) === 3, WAIT);
    const a = await f.sink(s, opts, name);
    const got = drain(a.subscribe());
    await waitFor(() => new Set(got.map((g) => g.id)).size === 3, { ...WAIT, what: 'A gets all three events' });
    expect([...new Set(got.map((g) => g.id))].sort()).toEqual([...ids].sort());
    expect(Number(await c.cmd('XLEN', `pulse:stream:${s.name}:dead`))).toBe(0);
    expect(b.counters.deadLettered + a.counters.deadLettered).toBe(0);
    // B posted the stream to the work set: the set expires, though it was created between two tidy calls (finding 5).
    expect(Number(await c.cmd('PTTL', sinkWideKeys(name).work))).not.toBe(-1);
  }, 30_000);

  it('an event nacked after removeStream, the instance still live: another instance reading the stream gets it within 2 x grace (review finding 3)', async (ctx) => {
    const f = fixture(ctx);
    const s1 = f.stream();
    const s2 = f.stream();
    const grace = 1000;
    const name = uniqueName('sk');
    const a = await f.sink(s1, { ackGracePeriodMs: grace }, name);
    await a.addStream(s2);
    const asub = a.subscribe();
    const id = (await s1.add('x', 'y')) as string;
    const ev = (await asub.next()).value as SinkEvent;
    expect(ev.id).toBe(id);
    const b = await f.sink(s1, { ackGracePeriodMs: grace }, name);
    const got = drain(b.subscribe());
    // A stops reading s1 while its handler still has the event, then gives it back.
    await a.removeStream(s1);
    await ev.nack();
    const at = Date.now();
    // It took B's backstop (about 9 s) before.
    await firstWithinTwoGraces(got, id, at, grace, 'the nacked event at B');
  }, 30_000);

  it('removeStream by the lease holder with an event pending: the lease goes to an instance still reading the stream (second review, A)', async (ctx) => {
    const f = fixture(ctx);
    const s1 = f.stream();
    const s2 = f.stream();
    const grace = 1000;
    const name = uniqueName('sk');
    const lease = sinkKeys(s1.name, name).lease;
    const b = await f.sink(s1, { ackGracePeriodMs: grace }, name);
    await b.addStream(s2);
    await waitFor(async () => (await c.cmd('GET', lease)) === b.consumerName, { ...WAIT, what: "B holds s1's lease" });
    const bsub = b.subscribe();
    await s1.add('x', 'y');
    const ev = (await bsub.next()).value as SinkEvent;
    const a = await f.sink(s1, { ackGracePeriodMs: grace }, name);
    const got = drain(a.subscribe());
    // B leaves s1 while its handler still has the event: it sweeps s1 until that is acked.
    await b.removeStream(s1);
    await ev.ack();
    await waitFor(async () => Number(((await c.cmd('XPENDING', s1.key, name)) as unknown[])[0]) === 0, WAIT);
    // A reads s1, so it sweeps it and takes the vacant lease; B's sweeps of s1
    // took it before, and kept it (B is live): a stream that expired then
    // had its unread events counted by no one.
    await s1.add('x', 'z');
    await waitFor(() => got.length > 0, { ...WAIT, what: 'the new event at A' });
    await waitFor(async () => (await c.cmd('GET', lease)) === a.consumerName, { ...WAIT, what: "A holds s1's lease" });
    expect(await c.cmd('ZSCORE', sinkKeys(s1.name, name).consumers, b.consumerName)).toBeNull();
  }, 30_000);

  it("the sink-wide liveness set lost (a restart without it): a crashed instance's events still within 2 x grace (second review, B)", async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 1000;
    const name = uniqueName('sk');
    const a = await f.sink(s, { ackGracePeriodMs: grace }, name);
    const got = drain(a.subscribe());
    await new Promise((r) => setTimeout(r, 2 * grace));
    // Instance B reads an event and crashes; the record of who is live is lost at once after.
    await c.cmd('ZADD', sinkWideKeys(name).instances, Date.now(), 'B');
    const id = String(await c.cmd('EVAL', ADD_AND_READ, 1, s.key, name, 'B'));
    const crash = Date.now();
    await c.cmd('DEL', sinkWideKeys(name).instances);
    // It took the backstop (10 x grace here; 10 s per stream for many streams) before.
    await firstWithinTwoGraces(got, id, crash, grace, "the crashed instance's event");
  }, 30_000);

  it('close() after removeStream left an event pending: the instance stays in the liveness set, so the others sweep for it (review finding 3)', async (ctx) => {
    const f = fixture(ctx);
    const s1 = f.stream();
    const s2 = f.stream();
    const name = uniqueName('sk');
    const a = await f.sink(s1, { ackGracePeriodMs: 1000 }, name);
    await a.addStream(s2);
    const asub = a.subscribe();
    await s1.add('x', 'y');
    expect((await asub.next()).done).toBe(false);
    await a.removeStream(s1);
    await a.close();
    expect(await c.cmd('ZSCORE', sinkWideKeys(name).instances, a.consumerName)).not.toBeNull();
  }, 30_000);

  it('the sink-wide liveness set recreated between two tidy calls gets its expiry at once (review finding 5)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const name = uniqueName('sk');
    const key = sinkWideKeys(name).instances;
    const a = await f.sink(s, { ackGracePeriodMs: 200 }, name);
    await waitFor(async () => (await c.cmd('ZSCORE', key, a.consumerName)) !== null, WAIT);
    // Gone (a destroy, or the last other instance left with ZREM): the next call, not a tidy one, creates it again.
    await c.cmd('DEL', key);
    await waitFor(async () => (await c.cmd('ZSCORE', key, a.consumerName)) !== null, WAIT);
    expect(Number(await c.cmd('PTTL', key))).toBeGreaterThan(0);
  }, 30_000);

  it('a liveness key of another type ends the sink with WRONGTYPE instead of failing forever; the event stays pending', async (ctx) => {
    // Review finding 6 kept sweeps and claims going past a failed liveness call: they still do for
    // one that a retry can outlive (its node down); a key of another type is refused on every retry.
    const f = fixture(ctx);
    const s = f.stream();
    const name = uniqueName('sk');
    const key = sinkWideKeys(name).instances;
    ctx.onTestFinished(async () => {
      await c.cmd('DEL', key);
    });
    const a = await f.sink(s, { ackGracePeriodMs: 500 }, name);
    const sub = a.subscribe();
    await s.add('x', 'y');
    const ev = (await sub.next()).value as SinkEvent;
    await c.cmd('DEL', key);
    await c.cmd('SET', key, 'not a sorted set');
    await ev.nack();
    const err = await nextWithin(sub, 5000).then(
      (r) => new Error(`not ended: ${r === 'timeout' ? r : r.done ? 'done' : 'delivered'}`),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('WRONGTYPE');
    expect(a.isClosed()).toBe(true);
    const pending = (await c.cmd('XPENDING', s.key, name)) as unknown[];
    expect(Number(pending[0])).toBe(1);
    expect(await c.cmd('GET', key)).toBe('not a sorted set');
  }, 30_000);
});
