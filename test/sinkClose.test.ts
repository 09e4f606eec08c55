/**
 * What `close()` does to loops, pending events and the sink's membership, and
 * what still works after it; both clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, type Sink, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, waitFor, within } from './support/clients.js';
import { BLOCK, consumersKey, GRACE, sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink close (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingCount, pendingEntries, groups, consumers, fixture } = sinkSuite(() => c);

  it('close() ends for-await loops and leaves unacked events pending for another instance', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const a = await f.sink(s, { bufferSize: 10 });
    const handled: SinkEvent[] = [];
    let resolveFirst: () => void = () => {};
    const first = new Promise<void>((r) => (resolveFirst = r));
    const loop = (async () => {
      for await (const ev of a) {
        handled.push(ev);
        resolveFirst();
      }
    })();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('event', `p${i}`)) as string);
    await within(first, 5000, 'first event');
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 5, WAIT);
    // All 5 handed out, not only read: an event read but never handed out is given back at close
    // with its delivery count set back (giveBack.ts), and comes to b with count 1, not 2 (a loaded
    // clean-clone CI run closed before the loop had taken them all).
    await waitFor(() => handled.length === 5, WAIT);
    await a.close();
    await within(loop, 5000, 'for-await loop ends on close');
    expect(a.isClosed()).toBe(true);
    // Handed out and not acked: all 5 stay pending, owned by a.
    const p = await pendingEntries(s.key, 'sink');
    expect(p.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(p.every((e) => e.consumer === a.consumerName)).toBe(true);

    const b = await f.sink(s);
    // Each acked as it comes: held unacked past b's own short grace period, b's first events came
    // back to b (count 3) in the claim of the later ones, a loaded run's [097, 097, 098, 098, 099]
    // (redelivery as documented, not a duplicate: the pairs below tell them apart).
    const sub = b.subscribe();
    const firstSeen = new Map<string, number>();
    const again: Array<[string, number]> = [];
    while (firstSeen.size < ids.length) {
      const [ev] = (await take(sub, 1, WAIT.timeout)) as [SinkEvent];
      await ev.ack();
      if (firstSeen.has(ev.id)) again.push([ev.id, ev.deliveryCount]);
      else firstSeen.set(ev.id, ev.deliveryCount);
    }
    expect([...firstSeen].sort()).toEqual([...ids].sort().map((id) => [id, 2]));
    // A repeat only as a redelivery (a higher count), never the same delivery twice.
    expect(again.filter(([, n]) => n <= 2)).toEqual([]);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
  });

  it('ack works after close()', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    await s.add('event', 'a');
    await s.add('event', 'b');
    const [e1, e2] = await take(sub, 2);
    await sink.close();
    await e1?.ack();
    await sink.ack(e2 as SinkEvent);
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('subscribe and addStream after close() throw ClosedError; removeStream resolves', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const s2 = f.stream();
    const sink = await f.sink(s);
    await sink.close();
    expect(() => sink.subscribe()).toThrow(ClosedError);
    expect(() => sink[Symbol.asyncIterator]()).toThrow(ClosedError);
    await expect((async () => sink.addStream(s2))()).rejects.toBeInstanceOf(ClosedError);
    await expect(sink.removeStream(s)).resolves.toBeUndefined();
    await expect(sink.removeStream(s2)).resolves.toBeUndefined();
    expect(await groups(s2.key)).toEqual([]);
  });

  it('close() is safe to call concurrently and repeatedly, also while a loop waits', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    const waiting = sub.next();
    await within(Promise.all([sink.close(), sink.close(), sink.close()]), 5000, 'concurrent close');
    await within(sink.close(), 5000, 'repeated close');
    expect(await within(waiting, 5000, 'pending next()')).toEqual({ value: undefined, done: true });
    expect(sink.isClosed()).toBe(true);
  });

  it('await using closes the sink, and its consumer leaves the group when nothing is pending', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    let ref: Sink | undefined;
    {
      await using sink = await s.newSink('sink', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
      ref = sink;
      const sub = sink.subscribe();
      await s.add('event', 'x');
      const [ev] = await take(sub, 1);
      await ev?.ack();
      expect(sink.isClosed()).toBe(false);
      expect(await consumers(s.key, 'sink')).toContain(sink.consumerName);
    }
    expect(ref.isClosed()).toBe(true);
    expect(await consumers(s.key, 'sink')).not.toContain(ref.consumerName);
    expect(await c.cmd('ZSCORE', consumersKey(s, 'sink'), ref.consumerName)).toBeNull();
  });
});
