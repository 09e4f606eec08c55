/**
 * Several subscriptions of one sink instance share its events, as the
 * instances of a sink do: each event goes to one of them (two `process()`
 * calls split the work), a subscription waiting for an event takes what a
 * busy sibling buffered, and one that takes nothing for a grace period (a
 * loop stuck in its body, a subscription never iterated) keeps nothing from
 * the others: its buffered events go to a sibling, or back to the sink
 * with their delivery count restored. README "Delivery guarantees":
 * "Duplicates come only from redelivery, and a redelivered event has deliveryCount > 1".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  collect,
  connect,
  recordingLogger,
  type TestClient,
  take,
  uniqueName,
  waitFor,
} from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1500;

let srv: RedisServer;
beforeAll(async () => {
  srv = await RedisServer.start();
});
afterAll(async () => {
  await srv?.stop();
});

describe.concurrent.each(CLIENT_KINDS)('subscriptions of one sink instance (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  async function setup(prefix: string, extra: Record<string, unknown> = {}) {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName(prefix), c.redis, { logger });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE, ...extra });
    const dead = async () => Number(await c.cmd('XLEN', `pulse:stream:${s.name}:dead`));
    const done = async () => {
      await sink.close();
      await s.destroy().catch(() => {});
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    };
    return { s, sink, lines, dead, done };
  }

  it('two process() calls split the events: each is handled once, as a first delivery', async () => {
    const { s, sink, done } = await setup('share-two');
    const runs: Array<{ id: string; count: number; by: string }> = [];
    const stop = new AbortController();
    const handler = (by: string) => async (ev: SinkEvent) => void runs.push({ id: ev.id, count: ev.deliveryCount, by });
    const p1 = sink.process(handler('p1'), { signal: stop.signal, concurrency: 4 });
    const p2 = sink.process(handler('p2'), { signal: stop.signal, concurrency: 4 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await s.add('e', `${i}`)) as string);
      await waitFor(() => ids.every((id) => runs.some((r) => r.id === id)), { what: 'all handled' });
      await waitFor(() => sink.counters.acked === 40, { what: 'all acked' });
      expect(runs).toHaveLength(40);
      expect(runs.every((r) => r.count === 1)).toBe(true);
      expect(sink.counters).toMatchObject({ delivered: 40, acked: 40, redelivered: 0, staleAcks: 0 });
    } finally {
      stop.abort();
      await Promise.all([p1, p2]);
      await done();
    }
  });

  it('a subscription waiting for an event takes what a busy sibling buffered, at once', async () => {
    const { s, sink, done } = await setup('share-steal');
    const stop = new AbortController();
    let release: () => void = () => {};
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const slow: string[] = [];
    const fast: string[] = [];
    // The slow one takes the first event and stays in its handler; the rest were read while it was busy.
    const p1 = sink.process(
      async (ev) => {
        slow.push(ev.id);
        await blocked;
      },
      { signal: stop.signal },
    );
    try {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await s.add('e', `${i}`)) as string);
      await waitFor(() => slow.length === 1, { what: 'the slow handler started' });
      const p2 = sink.process(async (ev) => void fast.push(ev.id), { signal: stop.signal });
      // Long before a grace period: nothing waits for a hold to lapse.
      await waitFor(() => fast.length === 9, { timeout: GRACE / 2, what: 'the 9 others handled by the idle sibling' });
      expect(new Set([...slow, ...fast])).toEqual(new Set(ids));
      release();
      stop.abort();
      await Promise.all([p1, p2]);
      expect(sink.counters).toMatchObject({ delivered: 10, redelivered: 0 });
    } finally {
      release();
      stop.abort();
      await done();
    }
  });

  it('a sibling that never takes an event does not keep events from the active one, also claimed ones', async () => {
    const { logger } = recordingLogger();
    const s = new Stream(uniqueName('share-stuck'), c.redis, { logger });
    // A consumer that read 10 events and died: a raw XREADGROUP consumer, found by the new instance's first sweep.
    const claimed: string[] = [];
    for (let i = 0; i < 10; i++) claimed.push((await s.add('e', `dead-${i}`)) as string);
    await c.cmd('XGROUP', 'CREATE', s.key, 'g', '0');
    await c.cmd('XREADGROUP', 'GROUP', 'g', 'dead-one', 'COUNT', 100, 'STREAMS', s.key, '>');
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE, bufferSize: 5, maxPolled: 5 });
    const stuck = sink.subscribe();
    const active: SinkEvent[] = [];
    void collect(sink.subscribe(), active, true);
    try {
      const later: string[] = [];
      for (let i = 0; i < 20; i++) later.push((await s.add('e', `later-${i}`)) as string);
      await waitFor(() => [...claimed, ...later].every((id) => active.some((e) => e.id === id)), {
        timeout: 5 * GRACE,
        what: 'every event handled by the active subscription',
      });
      expect(stuck.size).toBe(0);
      expect(active.filter((e) => later.includes(e.id)).every((e) => e.deliveryCount === 1)).toBe(true);
      expect(active.filter((e) => claimed.includes(e.id)).every((e) => e.deliveryCount === 2)).toBe(true);
    } finally {
      await sink.close();
      await s.destroy().catch(() => {});
    }
  });

  it('a for await loop stuck in its body gives back what it buffered: another instance handles it as a first delivery, only the event in the body is dead-lettered (maxDeliveries 1)', async () => {
    const { s, sink, dead, lines, done } = await setup('share-lone', { bufferSize: 20, maxDeliveries: 1 });
    const other = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE, maxDeliveries: 1 });
    const never = new Promise<void>(() => {});
    let inHandler: string | undefined;
    try {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await s.add('e', `${i}`)) as string);
      void (async () => {
        for await (const ev of sink) {
          inHandler = ev.id;
          await never;
        }
      })();
      await waitFor(() => inHandler !== undefined, { what: 'the stuck body started' });
      const got: SinkEvent[] = [];
      void collect(other.subscribe(), got, true);
      const behind = ids.filter((id) => id !== inHandler);
      await waitFor(() => behind.every((id) => got.some((e) => e.id === id)), {
        timeout: 5 * GRACE,
        what: 'the 9 events behind the stuck body handled by the other instance',
      });
      expect(got.filter((e) => behind.includes(e.id)).every((e) => e.deliveryCount === 1)).toBe(true);
      // The event the body holds reached code: its redelivery counts, and with maxDeliveries 1 it goes to the dead letters.
      await waitFor(async () => (await dead()) === 1, { timeout: 3 * GRACE, what: 'the event in the body dead-lettered' });
      expect(got.some((e) => e.id === inHandler)).toBe(false);
      expect(lines.some((l) => l.level === 'warn' && /took no event for a grace period/.test(String(l.msg)))).toBe(true);
    } finally {
      await other.close();
      await done();
    }
  });

  it('a loop that stalled and asks again within the grace period takes its events back at once, as first deliveries', async () => {
    const { s, sink, done } = await setup('share-wake', { bufferSize: 20 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await s.add('e', `${i}`)) as string);
      const sub = sink.subscribe();
      const [first] = await take(sub, 1);
      await first?.ack();
      // The body takes longer than a grace period: the sink takes the 9 buffered events from it.
      await waitFor(() => sub.size === 0, { timeout: 3 * GRACE, what: 'the stalled buffer released' });
      const rest = await take(sub, 9, GRACE);
      expect(rest.map((e) => e.id)).toEqual(ids.slice(1));
      expect(rest.every((e) => e.deliveryCount === 1)).toBe(true);
      for (const e of rest) await e.ack();
      expect(sink.counters).toMatchObject({ delivered: 10, redelivered: 0, acked: 10 });
    } finally {
      await done();
    }
  });

  it('a break beside a sibling that takes nothing: a new loop gets the rest at once, none dead-lettered (maxDeliveries 1)', async () => {
    const { s, sink, dead, done } = await setup('share-break', { bufferSize: 10, maxPolled: 10, maxDeliveries: 1 });
    try {
      const idle = sink.subscribe();
      const a = sink.subscribe();
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await s.add('e', `${i}`)) as string);
      const [first] = await take(a, 1);
      await first?.ack();
      await waitFor(() => idle.size + a.size === 9, { what: 'the other 9 buffered' });
      sink.unsubscribe(a);
      const got: SinkEvent[] = [];
      void collect(sink.subscribe(), got, true);
      const rest = ids.filter((id) => id !== first?.id);
      await waitFor(() => rest.every((id) => got.some((e) => e.id === id)), {
        timeout: GRACE / 2,
        what: 'the rest, long before a grace period',
      });
      expect(got.every((e) => e.deliveryCount === 1)).toBe(true);
      expect(await dead()).toBe(0);
    } finally {
      await done();
    }
  });

  it('unsubscribe takes only a subscription of this instance (idempotent for those)', async () => {
    const { s, sink, done } = await setup('share-unsub');
    const other = await s.newSink('g2', { blockMs: 100 });
    try {
      const mine = sink.subscribe();
      expect(() => sink.unsubscribe({} as never)).toThrow(InvalidArgumentError);
      expect(() => sink.unsubscribe(other.subscribe())).toThrow(InvalidArgumentError);
      sink.unsubscribe(mine);
      sink.unsubscribe(mine);
      expect(mine.ended).toBe(true);
    } finally {
      await other.close();
      await done();
    }
  });
});
