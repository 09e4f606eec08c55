/**
 * Acks, noAck sinks, topic and filter rejections acked by the sink, counters,
 * and a sink over several streams; both clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type SinkEvent, type SinkOptions, type Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, stays, type TestClient, take, waitFor } from './support/clients.js';
import { GRACE, sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink acks (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingCount, fixture } = sinkSuite(() => c);

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
    // Acked as read: a nack cannot bring it back, and says so (sinkNoAckFailure.test.ts).
    await expect(got[1]?.nack()).rejects.toBeInstanceOf(InvalidArgumentError);
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
});
