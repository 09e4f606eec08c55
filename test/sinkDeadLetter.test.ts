/**
 * `maxDeliveries` and the dead-letter stream: what goes there, once, with its
 * bytes; both clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, stays, type TestClient, take, waitFor } from './support/clients.js';
import { BLOCK, fieldsOf, GRACE, sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink dead letters (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingCount, xlen, fixture } = sinkSuite(() => c);

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
});
