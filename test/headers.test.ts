import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Event,
  InvalidArgumentError,
  readDeadLetters,
  replayDeadLetters,
  Stream,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

/** The entry's field names and values as strings, in stored order. */
async function rawFields(c: TestClient, key: string, id: string): Promise<string[]> {
  const reply = (await c.cmd('XRANGE', key, id, id)) as unknown[];
  const entry = reply[0] as [unknown, unknown[] | Record<string, unknown>] | undefined;
  if (!entry) throw new Error(`entry ${id} not found`);
  const fields = entry[1];
  const flat = Array.isArray(fields) ? fields : Object.entries(fields).flat();
  return flat.map((f) => String(f));
}

describe.each(CLIENT_KINDS)('headers (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a lone add stores each header as an h.<name> field and readers and sinks see them', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    const sink = await s.newSink('hs', { blockMs: 100 });
    const rs = reader.subscribe();
    const ss = sink.subscribe();
    const headers = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'x.Tenant_id-9': 'é ü', empty: '' };
    const id = await s.add('ev', 'body', { headers, topic: 'tp' });
    expect(await rawFields(c, s.key, id)).toEqual([
      'n',
      'ev',
      'p',
      'body',
      't',
      'tp',
      'h.traceparent',
      headers.traceparent,
      'h.x.Tenant_id-9',
      'é ü',
      'h.empty',
      '',
    ]);
    const [r] = await take(rs, 1);
    const [e] = await take(ss, 1);
    for (const ev of [r, e]) {
      expect(ev?.headers).toEqual(headers);
      expect(Object.isFrozen(ev?.headers)).toBe(true);
      expect(ev?.topic).toBe('tp');
    }
    await e?.ack();
    await reader.close();
    await sink.close();
    await s.destroy();
  });

  it('an entry without headers is exactly n, p (and t), lone or merged, and its event has a frozen empty object', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    const rs = reader.subscribe();
    const lone = await s.add('a', 'x');
    // Adds of one tick, some with headers: one script call, each entry its own fields.
    const ids = await Promise.all([
      s.add('b', 'y', { topic: 't1' }),
      s.add('c', 'z', { headers: { k: 'v' } }),
      s.add('d', 'w', { headers: {} }),
    ]);
    expect(await rawFields(c, s.key, lone)).toEqual(['n', 'a', 'p', 'x']);
    expect(await rawFields(c, s.key, ids[0])).toEqual(['n', 'b', 'p', 'y', 't', 't1']);
    expect(await rawFields(c, s.key, ids[1])).toEqual(['n', 'c', 'p', 'z', 'h.k', 'v']);
    expect(await rawFields(c, s.key, ids[2])).toEqual(['n', 'd', 'p', 'w']);
    const got = await take(rs, 4);
    expect(got.map((ev) => ev.headers)).toEqual([{}, {}, { k: 'v' }, {}]);
    expect(Object.isFrozen(got[0]?.headers)).toBe(true);
    expect(got.map((ev) => ev.id)).toEqual([lone, ...ids]);
    await reader.close();
    await s.destroy();
  });

  it('many adds in flight keep each event its own headers, through the script with a TTL and under interest retention', async () => {
    for (const options of [{ ttlMs: 60_000 }, { retention: 'interest' as const }, {}]) {
      const s = new Stream(uniqueName(), c.redis, options);
      const reader = await s.newReader({ blockMs: 100, startAt: 'oldest' });
      const rs = reader.subscribe();
      const n = 300;
      const ids = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          s.add(`e${i % 3}`, String(i), i % 2 === 0 ? { headers: { i: String(i), [`h-${i % 5}`]: 'x' } } : undefined),
        ),
      );
      const got = await take(rs, n);
      expect(got.map((ev) => ev.id)).toEqual(ids);
      got.forEach((ev: Event, i) => {
        expect(ev.payload.toString()).toBe(String(i));
        expect(ev.eventName).toBe(`e${i % 3}`);
        expect(ev.headers).toEqual(i % 2 === 0 ? { i: String(i), [`h-${i % 5}`]: 'x' } : {});
      });
      expect(await rawFields(c, s.key, ids[1] as string)).toEqual(['n', 'e1', 'p', '1']);
      await reader.close();
      await s.destroy();
    }
  });

  it('adds of one tick that share header names (trace context on every event) keep each its own values', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const variants = [
      // same name, no topic: name sent once
      (i: number) => s.add('same', `a${i}`, { headers: { traceparent: `tp${i}`, tracestate: `ts${i}` } }),
      // a name and a topic per event, some with a dedupId
      (i: number) =>
        s.add(`n${i}`, `b${i}`, { topic: `t${i}`, headers: { traceparent: `tp${i}` }, ...(i % 2 ? { dedupId: `d${i}` } : {}) }),
      // an empty name shared by all
      (i: number) => s.add('', `c${i}`, { headers: { x: '' } }),
    ];
    for (const add of variants) {
      const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => add(i)));
      const fields = await Promise.all(ids.map((id) => rawFields(c, s.key, id)));
      expect(new Set(ids).size).toBe(5);
      fields.forEach((f, i) => {
        if (add === variants[0])
          expect(f).toEqual(['n', 'same', 'p', `a${i}`, 'h.traceparent', `tp${i}`, 'h.tracestate', `ts${i}`]);
        if (add === variants[1]) expect(f).toEqual(['n', `n${i}`, 'p', `b${i}`, 't', `t${i}`, 'h.traceparent', `tp${i}`]);
        if (add === variants[2]) expect(f).toEqual(['n', '', 'p', `c${i}`, 'h.x', '']);
      });
    }
    expect(await s.add('n1', 'again', { dedupId: 'd1' })).toBe(
      ((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown]>)[6]?.[0],
    );
    await s.destroy();
  });

  it('a bad header name or a non-string value is an InvalidArgumentError and nothing is stored', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const bad: unknown[] = [
      { '': 'v' },
      { 'a b': 'v' },
      { 'a:b': 'v' },
      { ['x'.repeat(65)]: 'v' },
      { é: 'v' },
      { n: 1 },
      { n: undefined },
      { n: null },
      { n: Buffer.from('v') },
      'k=v',
      null,
      [['k', 'v']],
      Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`h${i}`, 'v'])),
    ];
    for (const headers of bad) {
      await expect(s.add('e', 'p', { headers: headers as Record<string, string> })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await c.cmd('EXISTS', s.key)).toBe(0);
    // The limits themselves are fine.
    const id = await s.add('e', 'p', { headers: { ['x'.repeat(64)]: 'v', 'A-z_0.9': 'v' } });
    expect(await rawFields(c, s.key, id)).toEqual(['n', 'e', 'p', 'p', `h.${'x'.repeat(64)}`, 'v', 'h.A-z_0.9', 'v']);
    await s.destroy();
  });

  it('reads h.* fields of foreign entries, ignores other fields, and a header named __proto__ is an own property', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    const rs = reader.subscribe();
    await c.cmd('XADD', s.key, '*', 'n', 'go', 'p', 'x', 'h.', 'no name', 'h.a', '1', 'other', 'y', 'hx', 'z');
    // JSON.parse makes __proto__ an own property, as a user's parsed headers would have it.
    const id = await s.add('js', 'y', { headers: JSON.parse('{"__proto__":"v","constructor":"c"}') as Record<string, string> });
    const [foreign, own] = await take(rs, 2);
    expect(foreign?.headers).toEqual({ a: '1' });
    expect(Object.keys(own?.headers ?? {})).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(own?.headers, '__proto__')?.value).toBe('v');
    expect(Object.getPrototypeOf(own?.headers)).toBe(Object.prototype);
    expect(own?.id).toBe(id);
    await reader.close();
    await s.destroy();
  });

  it('dead letters keep the headers, and replays add them back to the stream', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('dl', { blockMs: 100, ackGracePeriodMs: 50, maxDeliveries: 1 });
    const sub = sink.subscribe();
    const headers = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tenant: 't1' };
    const id = await s.add('poison', 'bytes', { headers, topic: 'tp' });
    const [first] = await take(sub, 1);
    expect(first?.headers).toEqual(headers);
    // Never acked: dead-lettered once its grace period runs out.
    const [letter] = await waitFor(async () => {
      const dead = await readDeadLetters(s);
      return dead.length > 0 ? dead : undefined;
    });
    expect(letter?.sourceId).toBe(id);
    expect(letter?.headers).toEqual(headers);
    expect(letter?.topic).toBe('tp');
    const [replayedId] = await replayDeadLetters(s);
    const [again] = await take(sub, 1);
    expect(again?.id).toBe(replayedId);
    expect(again?.headers).toEqual(headers);
    expect(again?.topic).toBe('tp');
    expect(await rawFields(c, s.key, replayedId as string)).toEqual([
      'n',
      'poison',
      'p',
      'bytes',
      't',
      'tp',
      'h.traceparent',
      headers.traceparent,
      'h.tenant',
      't1',
    ]);
    await again?.ack();
    await sink.close();
    await s.destroy();
    await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
  });

  it('a dead letter without headers has an empty headers object', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('dl', { blockMs: 100, ackGracePeriodMs: 50, maxDeliveries: 1 });
    const sub = sink.subscribe();
    await s.add('poison', 'bytes');
    await take(sub, 1);
    const [letter] = await waitFor(async () => {
      const dead = await readDeadLetters(s);
      return dead.length > 0 ? dead : undefined;
    });
    expect(letter?.headers).toEqual({});
    await sink.close();
    await s.destroy();
    await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
  });
});
