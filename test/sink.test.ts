/**
 * Sink behaviour against a real Redis, with both clients: the counterparts of
 * Go Pulse's sink tests, plus the contract of API.md ("Sink", "Event",
 * "Beyond the Go version") and SEMANTICS.md sections 2 to 4.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  ClosedError,
  InvalidArgumentError,
  type Logger,
  type Sink,
  type SinkEvent,
  type SinkOptions,
  Stream,
  type StreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { mapRecord as rec } from '../packages/pulse-streaming/src/internal/replies.js';
import {
  CLIENT_KINDS,
  collect,
  connect,
  nextWithin,
  recordingLogger,
  stays,
  type TestClient,
  take,
  uniqueName,
  waitFor,
  within,
} from './support/clients.js';

/** Short grace and block so the suite stays fast; waits are conditions with generous timeouts. */
const GRACE = 300;
const BLOCK = 100;
const WAIT = { timeout: 8000 };

function fieldsOf(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const arr = Array.isArray(flat) ? flat : Object.entries(rec(flat)).flat();
  for (let i = 0; i + 1 < arr.length; i += 2) out[String(arr[i])] = String(arr[i + 1]);
  return out;
}

function consumersKey(stream: Stream, sink: string): string {
  return `{${stream.key}}:sink:${sink}:consumers`;
}

describe.concurrent.each(CLIENT_KINDS)('sink (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  async function pendingCount(key: string, group: string): Promise<number> {
    const r = (await c.cmd('XPENDING', key, group)) as unknown[];
    return Number(r[0]);
  }

  async function pendingEntries(
    key: string,
    group: string,
  ): Promise<Array<{ id: string; consumer: string; deliveries: number }>> {
    const r = (await c.cmd('XPENDING', key, group, '-', '+', 1000)) as unknown[][];
    return r.map((e) => ({ id: String(e[0]), consumer: String(e[1]), deliveries: Number(e[3]) }));
  }

  async function groups(key: string): Promise<Array<Record<string, unknown>>> {
    try {
      return ((await c.cmd('XINFO', 'GROUPS', key)) as unknown[]).map(rec);
    } catch {
      return []; // no such key
    }
  }

  async function consumers(key: string, group: string): Promise<string[]> {
    try {
      return ((await c.cmd('XINFO', 'CONSUMERS', key, group)) as unknown[]).map((x) => String(rec(x).name));
    } catch {
      return []; // no such key or group
    }
  }

  async function xlen(key: string): Promise<number> {
    return Number(await c.cmd('XLEN', key));
  }

  /** Per-test resources, released when the test ends (works for concurrent tests too). */
  function fixture(ctx: TestContext) {
    const release: Array<() => Promise<unknown>> = [];
    ctx.onTestFinished(async () => {
      for (const f of release.reverse()) await f().catch(() => {});
    });
    return {
      stream(options?: StreamOptions): Stream {
        const s = new Stream(uniqueName('sink'), c.redis, options);
        release.push(() => s.destroy());
        return s;
      },
      async sink(stream: Stream, options?: SinkOptions, name = 'sink'): Promise<Sink> {
        const k = await stream.newSink(name, { blockMs: BLOCK, ackGracePeriodMs: GRACE, ...options });
        release.push(() => k.close());
        return k;
      },
      defer(f: () => Promise<unknown>): void {
        release.push(f);
      },
    };
  }

  // ---- Go's sink tests ----------------------------------------------------

  it('newSink creates the consumer group and registers the consumer (TestNewSink)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    expect(sink.name).toBe('sink');
    expect((await groups(s.key)).map((g) => g.name)).toEqual(['sink']);
    const score = await c.cmd('ZSCORE', consumersKey(s, 'sink'), sink.consumerName);
    expect(score).not.toBeNull();
    expect(sink.isClosed()).toBe(false);
  });

  it('reads an event once (TestReadOnce)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    const sub = sink.subscribe();
    const before = Date.now();
    const id = await s.add('event', 'payload', { topic: 'tp' });
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(id);
    expect(ev?.eventName).toBe('event');
    expect(ev?.payload.equals(Buffer.from('payload'))).toBe(true);
    expect(ev?.text()).toBe('payload');
    expect(ev?.topic).toBe('tp');
    expect(ev?.streamName).toBe(s.name);
    expect(ev?.sinkName).toBe('sink');
    expect(ev?.deliveryCount).toBe(1);
    expect(ev?.createdAt.getTime()).toBe(Number(id?.split('-')[0]));
    expect(Math.abs((ev?.createdAt.getTime() ?? 0) - before)).toBeLessThan(60_000);
    await ev?.ack();
    expect(await nextWithin(sub, 2 * GRACE)).toBe('timeout');
  });

  it('reads since the last event, and a new sink starts after a given ID (TestReadSinceLastEvent)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    const sub = sink.subscribe();
    const id1 = await s.add('event', 'payload');
    const [e1] = await take(sub, 1);
    expect(e1?.text()).toBe('payload');
    await e1?.ack();
    await s.add('event', 'payload2');
    const [e2] = await take(sub, 1);
    expect(e2?.text()).toBe('payload2');
    await e2?.ack();

    const sink2 = await f.sink(s, { startAt: { after: id1 as string } }, 'sink2');
    const [r2] = await take(sink2.subscribe(), 1);
    expect(r2?.text()).toBe('payload2');

    const sink3 = await f.sink(s, { startAt: { after: '0' } }, 'sink3');
    const r3 = await take(sink3.subscribe(), 2);
    expect(r3.map((e) => e.text())).toEqual(['payload', 'payload2']);
  });

  it('close then destroy removes the stream and the sink bookkeeping (TestCleanup)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    const sub = sink.subscribe();
    await s.add('event', 'payload');
    const [ev] = await take(sub, 1);
    await ev?.ack();
    await sink.close();
    expect(sink.isClosed()).toBe(true);
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(1);
    await s.destroy();
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
    const leftovers = (await c.cmd('KEYS', `{${s.key}}*`)) as unknown[];
    expect(leftovers).toEqual([]);
  });

  it('addStream reads another stream and is idempotent (TestAddStream)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const s2 = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    await sink.addStream(s2);
    await sink.addStream(s2);
    expect((await groups(s2.key)).map((g) => g.name)).toEqual(['sink']);
    const sub = sink.subscribe();
    await s.add('event', 'payload');
    await s2.add('event', 'payload2');
    const got = await take(sub, 2);
    expect(got.map((e) => [e.streamName, e.text()]).sort()).toEqual(
      [
        [s.name, 'payload'],
        [s2.name, 'payload2'],
      ].sort(),
    );
    await sink.ack(...got);
    // Added twice, read once: no duplicate.
    expect(await nextWithin(sub, 2 * GRACE)).toBe('timeout');
  });

  it('removeStream stops reading it and destroys its group when the last consumer leaves (TestRemoveStream)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const s2 = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    await sink.addStream(s2);
    const sub = sink.subscribe();
    await s.add('event', 'payload');
    await s2.add('event2', 'payload2');
    const got = await take(sub, 2);
    expect(got.map((e) => e.eventName).sort()).toEqual(['event', 'event2']);
    await sink.ack(...got);

    await sink.removeStream(s2);
    await sink.removeStream(s2); // idempotent
    expect(await groups(s2.key)).toEqual([]);
    const xId = await s2.add('x', 'not read');
    const eventId = await s.add('event3', 'payload3');
    const [e3] = await take(sub, 1);
    expect(e3?.eventName).toBe('event3');
    await e3?.ack();
    expect(await nextWithin(sub, 2 * GRACE)).toBe('timeout');

    await sink.addStream(s2, { startAt: { after: xId as string } });
    await sink.removeStream(s);
    expect(await groups(s.key)).toEqual([]);
    await s.add('not read', 'x');
    await s2.add('event4', 'payload4');
    const [e4] = await take(sub, 1);
    expect(e4?.eventName).toBe('event4');
    expect(e4?.payload.equals(Buffer.from('payload4'))).toBe(true);
    expect(eventId).toBeDefined();
  });

  it('removeStream keeps the group while another instance of the sink is reading it', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const s2 = f.stream();
    const a = await f.sink(s);
    const b = await f.sink(s2);
    const subB = b.subscribe();
    await s2.add('warm-up', 'x');
    const [w] = await take(subB, 1);
    await w?.ack();
    await a.addStream(s2);
    await a.removeStream(s2);
    expect((await groups(s2.key)).map((g) => g.name)).toEqual(['sink']);
    const id = await s2.add('after', 'y');
    const [ev] = await take(subB, 1);
    expect(ev?.id).toBe(id);
  });

  it('removeStream keeps the group while another live instance exists, even one that has not received an event yet', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const s2 = f.stream();
    const a = await f.sink(s);
    const b = await f.sink(s2); // a live instance of the sink on s2 that has not subscribed yet
    await a.addStream(s2);
    const subA = a.subscribe();
    const e1 = await s2.add('first', 'x');
    const [got] = await take(subA, 1);
    expect(got?.id).toBe(e1);
    await got?.ack();
    await a.removeStream(s2);
    // b still belongs to the sink: its group (and cursor) must survive.
    expect((await groups(s2.key)).map((g) => g.name)).toEqual(['sink']);
    const subB = b.subscribe();
    const e2 = await s2.add('second', 'y');
    const [next] = await take(subB, 1);
    // A destroyed and recreated group would hand b the acked e1 again as a first delivery.
    expect(next?.id).toBe(e2);
  });

  it('removeStream keeps the group while events are pending on it', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const s2 = f.stream();
    const a = await f.sink(s);
    await a.addStream(s2);
    const sub = a.subscribe();
    const id = await s2.add('pending', 'x');
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(id);
    await a.removeStream(s2);
    expect((await groups(s2.key)).map((g) => g.name)).toEqual(['sink']);
    expect(await pendingEntries(s2.key, 'sink')).toEqual([{ id, consumer: a.consumerName, deliveries: 1 }]);
    // Acking after removeStream still works.
    await ev?.ack();
    expect(await pendingCount(s2.key, 'sink')).toBe(0);
  });

  it('two instances of one sink split the events: each to exactly one (TestMultipleConsumers)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    // A grace period a loaded machine cannot starve (300 ms did, with five test files at once:
    // a buffered event's hold lapsed and the other instance claimed it, deliveryCount 2).
    const grace = 1500;
    const a = await f.sink(s, { startAt: 'oldest', ackGracePeriodMs: grace });
    const b = await f.sink(s, { startAt: 'oldest', ackGracePeriodMs: grace });
    expect(a.consumerName).not.toBe(b.consumerName);
    const gotA: SinkEvent[] = [];
    const gotB: SinkEvent[] = [];
    const runA = collect(a.subscribe(), gotA, true);
    const runB = collect(b.subscribe(), gotB, true);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await s.add('event', `p${i}`)) as string);
    await waitFor(() => gotA.length + gotB.length >= 20, { ...WAIT, what: '20 events' });
    // Acked at once: nothing comes back after the grace period.
    await stays(() => gotA.length + gotB.length === 20, 2 * grace, 'no event delivered twice');
    const all = [...gotA, ...gotB].map((e) => e.id);
    expect(new Set(all).size).toBe(20);
    expect([...all].sort()).toEqual([...ids].sort());
    expect([...gotA, ...gotB].every((e) => e.deliveryCount === 1)).toBe(true);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    await Promise.all([a.close(), b.close()]);
    await within(Promise.all([runA, runB]), 5000, 'loops end on close');
  });

  it('an unacked event comes back to the only instance after the grace period (TestClaimStaleMessages)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    const sub = sink.subscribe();
    const t0 = Date.now();
    const id = await s.add('event', 'payload');
    const [first] = await take(sub, 1);
    expect(first?.id).toBe(id);
    expect(first?.deliveryCount).toBe(1);
    const [again] = await take(sub, 1, WAIT.timeout);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE - 5);
    expect(again?.id).toBe(id);
    expect(again?.eventName).toBe('event');
    expect(again?.text()).toBe('payload');
    expect(again?.deliveryCount).toBe(2);
    await again?.ack();
    expect(await nextWithin(sub, 2 * GRACE)).toBe('timeout');
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('an event one instance does not ack goes to another instance after the grace period (TestNonAckMessageDeliveredToAnotherConsumer)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const a = await f.sink(s, { startAt: 'oldest' });
    const subA = a.subscribe();
    const t0 = Date.now();
    const id = await s.add('event', 'payload');
    const [ev] = await take(subA, 1);
    expect(ev?.deliveryCount).toBe(1);
    // A stays alive but stops taking events; B is the live consumer that can take it.
    a.unsubscribe(subA);
    const b = await f.sink(s);
    const subB = b.subscribe();
    const [re] = await take(subB, 1, WAIT.timeout);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE - 5);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    const p = await pendingEntries(s.key, 'sink');
    expect(p).toEqual([{ id, consumer: b.consumerName, deliveries: 2 }]);
    await re?.ack();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
    expect(a.isClosed()).toBe(false);
  });

  it('a stale consumer is removed only after its pending events were claimed (TestStaleConsumerDeletionAndMessageClaiming)', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const a = await f.sink(s, { startAt: 'oldest' });
    const subA = a.subscribe();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.add('event', `p${i}`)) as string);
    await take(subA, 3);
    await a.close(); // leaves its 3 events pending, stops its keep-alive
    expect(await consumers(s.key, 'sink')).toContain(a.consumerName);
    expect(await pendingCount(s.key, 'sink')).toBe(3);

    const b = await f.sink(s);
    const subB = b.subscribe();
    const got = await take(subB, 3, WAIT.timeout);
    expect(got.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(got.every((e) => e.deliveryCount === 2)).toBe(true);
    await b.ack(...got);
    await waitFor(async () => !(await consumers(s.key, 'sink')).includes(a.consumerName), {
      ...WAIT,
      what: 'stale consumer removed',
    });
    expect(await consumers(s.key, 'sink')).toEqual([b.consumerName]);
    expect(await c.cmd('ZSCORE', consumersKey(s, 'sink'), a.consumerName)).toBeNull();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('bad sink names and options are InvalidArgumentErrors, before anything is created', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    for (const name of ['', 'a b', 'a*', 'a?', 'a[', 'a]', 'a\0', 'x'.repeat(513)]) {
      await expect((async () => s.newSink(name))()).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    const bad: SinkOptions[] = [
      { blockMs: 0 },
      { ackGracePeriodMs: 0 },
      { ackGracePeriodMs: -1 },
      { maxDeliveries: 0 },
      { deadLetterStream: 'a b' },
      { startAt: 'yesterday' as never },
    ];
    for (const options of bad) {
      await expect((async () => s.newSink('sink', options))()).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
    const sink = await f.sink(s);
    await expect((async () => sink.process(() => {}, { concurrency: 0 }))()).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  // ---- startAt -----------------------------------------------------------

  describe('startAt for a new group', () => {
    async function seeded(ctx: TestContext) {
      const f = fixture(ctx);
      const s = f.stream();
      for (const id of ['1000-0', '2000-0', '2000-1', '3000-0']) await c.cmd('XADD', s.key, id, 'n', `e${id}`, 'p', id);
      return { f, s };
    }

    it("'newest' (the default) starts after the last entry", async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s);
      const sub = sink.subscribe();
      const id = await s.add('new', 'x');
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(id);
    });

    it("'newest' on a stream that does not exist yet creates it and reads from its first entry", async (ctx) => {
      const f = fixture(ctx);
      const s = f.stream();
      const sink = await f.sink(s);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(1);
      const sub = sink.subscribe();
      const id = await s.add('first', 'x');
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(id);
    });

    it("'oldest' starts at the oldest entry", async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s, { startAt: 'oldest' });
      const got = await take(sink.subscribe(), 4);
      expect(got.map((e) => e.id)).toEqual(['1000-0', '2000-0', '2000-1', '3000-0']);
    });

    it('a Date starts at the first entry on or after it, <ms>-0 included', async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s, { startAt: new Date(2000) });
      const got = await take(sink.subscribe(), 3);
      expect(got.map((e) => e.id)).toEqual(['2000-0', '2000-1', '3000-0']);
      expect(got[0]?.eventName).toBe('e2000-0');
    });

    it('{ after: id } starts at the first entry whose ID is greater', async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s, { startAt: { after: '2000-0' } });
      const got = await take(sink.subscribe(), 2);
      expect(got.map((e) => e.id)).toEqual(['2000-1', '3000-0']);
      const sink2 = await f.sink(s, { startAt: { after: '2500-0' } }, 'sink2');
      const [ev] = await take(sink2.subscribe(), 1);
      expect(ev?.id).toBe('3000-0');
    });

    it('startAt is ignored when the group already exists', async (ctx) => {
      const { f, s } = await seeded(ctx);
      const first = await f.sink(s); // newest: group after 3000-0
      await first.close();
      const again = await f.sink(s, { startAt: 'oldest' });
      const sub = again.subscribe();
      const id = await s.add('new', 'x');
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(id);
      const g = (await groups(s.key))[0];
      expect(g?.name).toBe('sink');
    });
  });

  // ---- ack, noAck, filters, counters --------------------------------------

  it('ack(...events) acknowledges many events in one call', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { startAt: 'oldest' });
    const sub = sink.subscribe();
    for (let i = 0; i < 10; i++) await s.add('event', `p${i}`);
    const got = await take(sub, 10);
    expect(await pendingCount(s.key, 'sink')).toBe(10);
    await sink.ack(...got);
    expect(await pendingCount(s.key, 'sink')).toBe(0);
    expect(sink.counters.acked).toBe(10);
    await sink.ack(); // nothing to ack
  });

  it('event.ack() acknowledges the event', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    expect(await pendingCount(s.key, 'sink')).toBe(1);
    expect(ev?.acker).toBe(sink);
    await ev?.ack();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('a noAck sink leaves nothing pending and its ack resolves', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { noAck: true });
    const sub = sink.subscribe();
    for (let i = 0; i < 3; i++) await s.add('event', `p${i}`);
    const got = await take(sub, 3);
    expect(await pendingCount(s.key, 'sink')).toBe(0);
    await got[0]?.ack();
    await sink.ack(...got);
    await got[1]?.nack();
    await got[2]?.inProgress();
    expect(await nextWithin(sub, 2 * GRACE)).toBe('timeout');
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  for (const [label, opts] of [
    ['a topic string', { topic: 'keep' }],
    ['a topic RegExp', { topic: /^ke+p$/ }],
    ['a filter', { filter: (e: { topic: string | undefined }) => e.topic === 'keep' }],
  ] as Array<[string, SinkOptions]>) {
    it(`events rejected by ${label} are acked by the sink, never left pending (Go defect 1)`, async (ctx) => {
      const f = fixture(ctx);
      const s = f.stream();
      const sink = await f.sink(s, opts);
      const sub = sink.subscribe();
      for (let i = 0; i < 3; i++) await s.add('drop', `d${i}`, { topic: 'other' });
      await s.add('drop', 'no topic');
      const keep = await s.add('keep', 'k', { topic: 'keep' });
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(keep);
      await ev?.ack();
      await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, { ...WAIT, what: 'nothing pending' });
      expect(sink.counters.filtered).toBe(4);
      // Not reclaimed later either.
      await stays(async () => (await pendingCount(s.key, 'sink')) === 0, 2 * GRACE, 'nothing pending');
      expect(await nextWithin(sub, 10)).toBe('timeout');
      expect(sink.counters.redelivered).toBe(0);
    });
  }

  it('counters: delivered, acked, redelivered', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    expect(sink.counters).toEqual({
      delivered: 0,
      redelivered: 0,
      acked: 0,
      deadLettered: 0,
      lost: 0,
      filtered: 0,
      staleAcks: 0,
    });
    const sub = sink.subscribe();
    for (let i = 0; i < 3; i++) await s.add('event', `p${i}`);
    const got = await take(sub, 3);
    await sink.ack(got[0] as SinkEvent, got[1] as SinkEvent);
    const [re] = await take(sub, 1, WAIT.timeout);
    expect(re?.id).toBe(got[2]?.id);
    await re?.ack();
    expect(sink.counters).toEqual({
      delivered: 3,
      redelivered: 1,
      acked: 3,
      deadLettered: 0,
      lost: 0,
      filtered: 0,
      staleAcks: 0,
    });
  });

  it('a sink over 3 streams (addStream) delivers from each and acks across streams in one call', async (ctx) => {
    const f = fixture(ctx);
    const streams = [f.stream(), f.stream(), f.stream()];
    const [s1, s2, s3] = streams as [Stream, Stream, Stream];
    const sink = await f.sink(s1);
    await sink.addStream(s2);
    await sink.addStream(s3);
    const sub = sink.subscribe();
    const added = new Map<string, string>();
    for (const st of streams)
      for (let i = 0; i < 2; i++) added.set(`${st.name}/${await st.add('event', `${st.name}-${i}`)}`, st.name);
    const got = await take(sub, 6);
    expect(got.map((e) => `${e.streamName}/${e.id}`).sort()).toEqual([...added.keys()].sort());
    for (const e of got) expect(e.text().startsWith(e.streamName)).toBe(true);
    await sink.ack(...got);
    for (const st of streams) expect(await pendingCount(st.key, 'sink')).toBe(0);
  });

  // ---- close ---------------------------------------------------------------

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
    await a.close();
    await within(loop, 5000, 'for-await loop ends on close');
    expect(a.isClosed()).toBe(true);
    // Handed out or only read: all 5 stay pending, owned by a.
    const p = await pendingEntries(s.key, 'sink');
    expect(p.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(p.every((e) => e.consumer === a.consumerName)).toBe(true);

    const b = await f.sink(s);
    const got = await take(b.subscribe(), 5, WAIT.timeout);
    expect(got.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(got.every((e) => e.deliveryCount === 2)).toBe(true);
    await b.ack(...got);
    expect(await pendingCount(s.key, 'sink')).toBe(0);
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

  // ---- lost events -----------------------------------------------------------

  it('entries deleted or trimmed while pending are reported as lost, not delivered empty', async (ctx) => {
    const f = fixture(ctx);
    const { logger, lines } = recordingLogger();
    const s = f.stream({ logger: logger as Logger });
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('event', `p${i}`)) as string);
    const got = await take(sub, 5);
    expect(got.map((e) => e.id)).toEqual(ids);
    await s.remove(ids[0] as string); // XDEL
    await c.cmd('XTRIM', s.key, 'MAXLEN', '1'); // exact trim: only ids[4] stays
    const later: SinkEvent[] = [];
    const run = collect(sub, later, false);
    await waitFor(() => sink.counters.lost >= 4, { ...WAIT, what: '4 lost events' });
    expect(sink.counters.lost).toBe(4);
    const warned = lines.filter((l) => l.level === 'warn' && ids.slice(0, 4).some((id) => JSON.stringify(l.obj).includes(id)));
    expect(warned.length).toBeGreaterThan(0);
    // The surviving entry is redelivered; the lost ones never are, not even as empty events.
    await waitFor(() => later.length > 0, WAIT);
    expect(later.every((e) => e.id === ids[4] && e.text() === 'p4' && e.eventName === 'event')).toBe(true);
    await sink.ack(...later);
    expect(await pendingEntries(s.key, 'sink')).toEqual([]);
    await stays(() => later.every((e) => e.id === ids[4]), 2 * GRACE, 'no lost event delivered');
    await sink.close();
    await run;
  });

  it('events trimmed by maxLen before a new group read anything are reported as lost (SEMANTICS 4)', async (ctx) => {
    const f = fixture(ctx);
    const { logger, lines } = recordingLogger();
    const s = f.stream({ logger: logger as Logger, maxLen: 10 });
    const sink = await f.sink(s); // group exists; reading starts on subscribe
    const added: string[] = [];
    for (let i = 0; i < 300; i++) added.push((await s.add('event', `p${i}`)) as string);
    const remaining = await xlen(s.key);
    expect(remaining).toBeLessThan(300);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, true);
    await waitFor(() => got.length >= remaining, WAIT);
    const trimmed = 300 - remaining;
    // Every added event ends acked or reported lost: nothing silently dropped.
    await waitFor(() => sink.counters.lost >= trimmed, { ...WAIT, what: `${trimmed} trimmed events reported lost` });
    expect(sink.counters.lost).toBe(trimmed);
    expect(lines.some((l) => l.level === 'warn')).toBe(true);
    await sink.close();
    await run;
  });

  it('events trimmed by maxLen while no subscriber reads are reported as lost after a resumed read', async (ctx) => {
    const f = fixture(ctx);
    const { logger, lines } = recordingLogger();
    const s = f.stream({ logger: logger as Logger, maxLen: 10 });
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    await s.add('event', 'first');
    const [first] = await take(sub, 1);
    await first?.ack();
    sink.unsubscribe(sub); // no subscriber: the sink stops reading
    for (let i = 0; i < 300; i++) await s.add('event', `p${i}`);
    const remaining = await xlen(s.key);
    expect(remaining).toBeLessThan(300);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, true);
    await waitFor(() => got.length >= remaining, WAIT);
    await waitFor(() => sink.counters.lost >= 300 - remaining, { ...WAIT, what: 'trimmed events reported lost' });
    expect(sink.counters.lost).toBe(300 - remaining);
    expect(got.map((e) => e.text())).toEqual(Array.from({ length: remaining }, (_, i) => `p${300 - remaining + i}`));
    expect(lines.some((l) => l.level === 'warn')).toBe(true);
    await sink.close();
    await run;
  });

  /** Resolves once the sink's read connection is blocked in XREADGROUP (it read everything and waits). */
  async function blockedInRead(sinkName: string): Promise<void> {
    await waitFor(
      async () =>
        String(await c.cmd('CLIENT', 'LIST'))
          .split('\n')
          .some((l) => l.includes(`name=pulse:sink:${sinkName}:read `) && / flags=b /.test(l) && l.includes('cmd=xreadgroup')),
      { ...WAIT, what: 'the sink blocked in XREADGROUP' },
    );
  }

  // One command adds many entries and trims some before Redis serves the
  // blocked read: XREADGROUP moves past the trimmed ones and counts only the
  // survivors. Each writer below is such a command (the library's adds of one
  // tick are one script call per 256 events).
  const writers: Array<[string, (s: Stream, n: number, maxLen: number) => Promise<void>]> = [
    [
      'a script of XADD MAXLEN =',
      async (s, n, maxLen) => {
        const body = `for i = 1, ${n} do redis.call('XADD', KEYS[1], 'MAXLEN', '=', '${maxLen}', '*', 'n', 'event', 'p', 'p' .. (i - 1)) end`;
        await c.cmd('EVAL', body, 1, s.key);
      },
    ],
    [
      "the library's adds of one tick, maxLen",
      async (s, n) => {
        await Promise.all(Array.from({ length: n }, (_, i) => s.add('event', `p${i}`)));
      },
    ],
  ];
  // The last case leaves more entries after the read than the check counts
  // at once: it reports the loss once the sink has caught up.
  const shapes: Array<{ n: number; maxLen: number; maxPolled: number }> = [
    { n: 250, maxLen: 10, maxPolled: 1000 },
    { n: 250, maxLen: 10, maxPolled: 10 },
    { n: 1000, maxLen: 400, maxPolled: 10 },
  ];
  for (const [writer, write] of writers) {
    for (const { n, maxLen, maxPolled } of shapes) {
      it(`a blocked sink served after ${writer} ${maxLen} (${n} events, maxPolled ${maxPolled}) reports what its read jumped over as lost`, async (ctx) => {
        const f = fixture(ctx);
        const { logger, lines } = recordingLogger();
        const s = f.stream({ logger: logger as Logger, maxLen });
        const name = uniqueName('jump');
        // A grace period no stall of a loaded machine reaches: redelivery is not what this counts.
        const sink = await f.sink(s, { maxPolled, ackGracePeriodMs: 10_000 }, name);
        const got: SinkEvent[] = [];
        const run = collect(sink.subscribe(), got, true);
        await s.add('event', 'first');
        await waitFor(() => got.length === 1, WAIT);
        await blockedInRead(name);
        await write(s, n, maxLen);
        const kept = await xlen(s.key);
        expect(kept).toBeLessThan(n);
        // Every added event ends handled or reported lost, never both, never neither.
        await waitFor(() => got.length - 1 + sink.counters.lost >= n, { ...WAIT, what: 'all events handled or lost' });
        const handled = got.slice(1).map((e) => Number(e.text().slice(1)));
        expect(handled.length + sink.counters.lost).toBe(n);
        // In order, each once, and every survivor among them (the sink may
        // also have read some before a later script call trimmed them).
        expect(handled.every((v, i) => i === 0 || v > (handled[i - 1] as number))).toBe(true);
        expect(handled.slice(-kept)).toEqual(Array.from({ length: kept }, (_, i) => n - kept + i));
        expect(lines.some((l) => l.level === 'warn' && l.msg?.includes('trimmed before this sink read them'))).toBe(true);
        const lost = sink.counters.lost;
        await stays(() => sink.counters.lost === lost && got.length === handled.length + 1, 3 * BLOCK, 'nothing counted twice');
        await sink.close();
        await run;
      });
    }
  }

  it('close() counts what its last blocking read jumped over, before the next keep-alive would', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream({ maxLen: 10 });
    const name = uniqueName('jump');
    // Keep-alive (and its trim check) every 5 s: close() comes first.
    const sink = await f.sink(s, { ackGracePeriodMs: 60_000 }, name);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, true);
    await s.add('event', 'first');
    await waitFor(() => got.length === 1, WAIT);
    await blockedInRead(name);
    await c.cmd(
      'EVAL',
      `for i = 1, 100 do redis.call('XADD', KEYS[1], 'MAXLEN', '=', '10', '*', 'n', 'event', 'p', 'p' .. (i - 1)) end`,
      1,
      s.key,
    );
    await waitFor(() => got.length === 11, { ...WAIT, what: 'the 10 survivors handled' });
    expect(sink.counters.lost).toBe(0);
    await sink.close();
    await run;
    expect(sink.counters.lost).toBe(90);
  });

  // ---- nack, inProgress ----------------------------------------------------------

  it('nack({ delayMs: 0 }) redelivers well before the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    await ev?.nack({ delayMs: 0 });
    const [re] = await take(sub, 1, 3000);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    await re?.ack();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('nack({ delayMs }) redelivers after that delay, not after the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    const t = Date.now();
    await ev?.nack({ delayMs: 400 });
    const [re] = await take(sub, 1, 3500);
    expect(Date.now() - t).toBeGreaterThanOrEqual(390);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    await re?.ack();
  });

  it('nack() without a delay redelivers after the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 400;
    const sink = await f.sink(s, { ackGracePeriodMs: grace });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    const t = Date.now();
    await ev?.nack();
    const [re] = await take(sub, 1, WAIT.timeout);
    expect(Date.now() - t).toBeGreaterThanOrEqual(grace - 10);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    await re?.ack();
  });

  it('inProgress() keeps an event from being redelivered while a handler works for 3 x grace', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 500;
    const sink = await f.sink(s, { ackGracePeriodMs: grace });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    const ticker = setInterval(() => {
      ev?.inProgress().catch(() => {});
    }, grace / 6);
    try {
      expect(await nextWithin(sub, 3 * grace)).toBe('timeout');
    } finally {
      clearInterval(ticker);
    }
    expect(await pendingEntries(s.key, 'sink')).toEqual([{ id, consumer: sink.consumerName, deliveries: 1 }]);
    await ev?.ack();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  // ---- dead letters ----------------------------------------------------------------

  async function deadLetters(key: string): Promise<Array<{ id: string; fields: Record<string, string> }>> {
    const r = (await c.cmd('XRANGE', key, '-', '+')) as unknown[][];
    return r.map((e) => ({ id: String(e[0]), fields: fieldsOf(e[1]) }));
  }

  it('maxDeliveries: a never-acked event is delivered exactly that many times, then dead-lettered once', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const deadKey = `pulse:stream:${s.name}:dead`;
    f.defer(() => c.cmd('DEL', deadKey));
    const sink = await f.sink(s, { maxDeliveries: 3 });
    const deliveries: SinkEvent[] = [];
    const run = (async () => {
      for await (const ev of sink) {
        deliveries.push(ev);
        if (ev.eventName === 'good') await ev.ack();
      }
    })();
    const poison = (await s.add('poison', Buffer.from([0, 1, 255]), { topic: 'tp' })) as string;
    await s.add('good', 'ok');
    await waitFor(async () => (await xlen(deadKey)) >= 1, { ...WAIT, what: 'dead letter' });
    await stays(
      async () => (await xlen(deadKey)) === 1 && deliveries.filter((e) => e.id === poison).length === 3,
      2 * GRACE,
      'exactly 3 deliveries and 1 dead letter',
    );
    expect(deliveries.filter((e) => e.id === poison).map((e) => e.deliveryCount)).toEqual([1, 2, 3]);
    expect(deliveries.filter((e) => e.eventName === 'good')).toHaveLength(1);
    const [dead] = await deadLetters(deadKey);
    expect(dead?.fields).toMatchObject({
      n: 'poison',
      t: 'tp',
      source_stream: s.name,
      source_sink: 'sink',
      source_id: poison,
      deliveries: '3',
    });
    expect(dead?.fields.reason?.length).toBeGreaterThan(0);
    expect(await pendingCount(s.key, 'sink')).toBe(0);
    expect(sink.counters.deadLettered).toBe(1);
    await sink.close();
    await run;
  });

  it('dead letters keep the payload bytes', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const deadKey = `pulse:stream:${s.name}:dead`;
    f.defer(() => c.cmd('DEL', deadKey));
    const sink = await f.sink(s, { maxDeliveries: 1 });
    const sub = sink.subscribe();
    const payload = Buffer.from([0, 1, 255, 0x80, 10]);
    await s.add('poison', payload);
    await take(sub, 1);
    await waitFor(async () => (await xlen(deadKey)) === 1, WAIT);
    // Read the dead-letter stream through the library: bytes must be intact.
    const dead = new Stream(`${s.name}:dead`, c.redis);
    const reader = await dead.newReader({ startAt: 'oldest', blockMs: BLOCK });
    try {
      const [ev] = await take(reader.subscribe(), 1);
      expect(ev?.eventName).toBe('poison');
      expect(ev?.payload.equals(payload)).toBe(true);
    } finally {
      await reader.close();
    }
  });

  it('deadLetterStream sets the name of the dead-letter stream', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const custom = `${s.name}-dlq`;
    f.defer(() => c.cmd('DEL', `pulse:stream:${custom}`, `pulse:stream:${s.name}:dead`));
    const sink = await f.sink(s, { maxDeliveries: 1, deadLetterStream: custom });
    const sub = sink.subscribe();
    const id = await s.add('poison', 'x');
    await take(sub, 1);
    await waitFor(async () => (await xlen(`pulse:stream:${custom}`)) === 1, WAIT);
    const [dead] = await deadLetters(`pulse:stream:${custom}`);
    expect(dead?.fields).toMatchObject({ n: 'poison', p: 'x', source_id: id, source_sink: 'sink', deliveries: '1' });
    expect(Number(await c.cmd('EXISTS', `pulse:stream:${s.name}:dead`))).toBe(0);
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  // ---- process -------------------------------------------------------------------------

  it('process() acks on success', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const handled: string[] = [];
    const ac = new AbortController();
    const done = sink.process(
      (ev) => {
        handled.push(ev.id);
      },
      { signal: ac.signal },
    );
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('event', `p${i}`)) as string);
    await waitFor(() => handled.length >= 5, WAIT);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    expect(handled.sort()).toEqual([...ids].sort());
    ac.abort();
    await within(done, 5000, 'process after abort');
    expect(sink.counters.acked).toBe(5);
  });

  it('process() nacks on a throw: the event comes back with deliveryCount 2', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const calls: number[] = [];
    const ac = new AbortController();
    const done = sink.process(
      (ev) => {
        calls.push(ev.deliveryCount);
        if (ev.deliveryCount === 1) throw new Error('boom');
      },
      { signal: ac.signal },
    );
    await s.add('event', 'x');
    await waitFor(() => calls.length >= 2, WAIT);
    expect(calls).toEqual([1, 2]);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    ac.abort();
    await within(done, 5000, 'process after abort');
  });

  it('process() runs at most `concurrency` handlers at once', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 2000 });
    let active = 0;
    let maxActive = 0;
    const handled: string[] = [];
    const gates: Array<() => void> = [];
    const ac = new AbortController();
    const done = sink.process(
      async (ev) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => gates.push(r));
        handled.push(ev.id);
        active--;
      },
      { concurrency: 3, signal: ac.signal },
    );
    for (let i = 0; i < 12; i++) await s.add('event', `p${i}`);
    await waitFor(() => active === 3, WAIT);
    await stays(() => active === 3, 200, 'no 4th handler while 3 run');
    while (handled.length < 12) {
      await waitFor(() => gates.length > 0, WAIT);
      for (const g of gates.splice(0)) g();
      await new Promise((r) => setImmediate(r));
    }
    expect(maxActive).toBe(3);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    ac.abort();
    await within(done, 5000, 'process after abort');
  });

  it('process() resolves after an abort only once in-flight handlers finish, and acks them', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 2000 });
    let release: () => void = () => {};
    let started = false;
    const ac = new AbortController();
    let resolved = false;
    const done = sink
      .process(
        async () => {
          started = true;
          await new Promise<void>((r) => (release = r));
        },
        { signal: ac.signal },
      )
      .then(() => {
        resolved = true;
      });
    await s.add('event', 'x');
    await waitFor(() => started, WAIT);
    ac.abort();
    await stays(() => !resolved, 200, 'process waits for the in-flight handler');
    release();
    await within(done, 5000, 'process after the handler finished');
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('process() resolves when the sink closes', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const done = sink.process(() => {});
    await s.add('event', 'x');
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0 && sink.counters.delivered === 1, WAIT);
    await sink.close();
    await within(done, 5000, 'process after close');
  });
});
