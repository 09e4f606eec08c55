/**
 * Sink behaviour against a real Redis, with both clients: the counterparts of
 * Go Pulse's sink tests and bad names and options. The rest of the contract of
 * API.md ("Sink", "Event") and SEMANTICS.md sections 2 to 4 is in
 * sinkStartAt, sinkAck, sinkClose, sinkLost, sinkNack, sinkDeadLetter and
 * sinkProcess.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type SinkEvent, type SinkOptions } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, nextWithin, stays, type TestClient, take, waitFor, within } from './support/clients.js';
import { consumersKey, GRACE, sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingCount, pendingEntries, groups, consumers, fixture } = sinkSuite(() => c);

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
});
