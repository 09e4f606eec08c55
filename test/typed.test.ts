/**
 * Typed streams (issue 17) with both clients: codecs and Standard Schema
 * validation (zod and valibot) on add and on `event.data`, typed round trips
 * through sinks and readers, and what a sink does with a foreign producer's
 * entry that does not decode (dead-lettered with `decode:`, never handled).
 */
import * as v from 'valibot';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { z } from 'zod';
import {
  type Codec,
  DecodeError,
  type EventMap,
  InvalidArgumentError,
  PulseError,
  type SinkEvent,
  type SinkOptions,
  type StandardSchemaV1,
  Stream,
  type StreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, stays, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const WAIT = { timeout: 10_000 };

type OrderEvents = { 'order.created': { id: number }; 'order.paid': { id: number; cents: number } };

const orderSchemas = {
  'order.created': z.object({ id: z.number().int() }),
  'order.paid': z.object({ id: z.number().int(), cents: z.number().int().nonnegative() }),
};

/** A Standard Schema that answers with a promise, as schemas with async refinements do. */
function asyncSchema<T>(check: (value: unknown) => value is T): StandardSchemaV1<unknown, T> {
  return {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: async (value: unknown) => {
        await new Promise((r) => setTimeout(r, 1));
        return check(value) ? { value } : { issues: [{ message: 'not accepted', path: ['id'] }] };
      },
    },
  };
}

async function deadLetters(c: TestClient, streamName: string): Promise<Array<Record<string, string>>> {
  const raw = (await c.cmd('XRANGE', `pulse:stream:${streamName}:dead`, '-', '+')) as Array<[string, unknown]>;
  return raw.map(([, fields]) => {
    const arr = Array.isArray(fields) ? (fields as unknown[]).map(String) : [];
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < arr.length; i += 2) out[arr[i] as string] = arr[i + 1] as string;
    return out;
  });
}

describe.concurrent.each(CLIENT_KINDS)('typed streams (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** A stream of this test, destroyed (with its dead letters) when the test ends, with its sinks closed. */
  function typed<E extends EventMap>(ctx: TestContext, options: StreamOptions<E>) {
    const s = new Stream<E>(uniqueName('typed'), c.redis, { maxLen: 0, ...options });
    const closers: Array<() => Promise<void>> = [];
    ctx.onTestFinished(async () => {
      await Promise.all(closers.map((f) => f()));
      await s.destroy().catch(() => {});
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    });
    return {
      s,
      async sink(options: SinkOptions = {}, name = 'sink') {
        const sink = await s.newSink(name, { startAt: 'oldest', blockMs: 100, ...options });
        closers.push(() => sink.close());
        return sink;
      },
      async reader() {
        const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
        closers.push(() => reader.close());
        return reader;
      },
    };
  }

  it('a typed round trip: values added go through a sink and a reader as decoded, validated data', async (ctx) => {
    const { s, sink, reader } = typed<OrderEvents>(ctx, { codec: 'json', schemas: orderSchemas });
    const id1 = await s.add('order.created', { id: 1 });
    const id2 = await s.add('order.paid', { id: 1, cents: 250 });
    const sub = (await sink()).subscribe();
    const got = await take(sub, 2);
    expect(got.map((e) => [e.id, e.eventName, e.data])).toEqual([
      [id1, 'order.created', { id: 1 }],
      [id2, 'order.paid', { id: 1, cents: 250 }],
    ]);
    const paid = got[1];
    if (paid?.eventName === 'order.paid') expect(paid.data.cents).toBe(250);
    // The payload stays the bytes stored: JSON, as Go Pulse or any other reader sees it.
    expect(got[0]?.payload.toString()).toBe('{"id":1}');
    expect(await got[0]?.decode()).toEqual({ id: 1 });
    for (const e of got) await e.ack();
    const fromReader = await take((await reader()).subscribe(), 2);
    expect(fromReader.map((e) => e.data)).toEqual([{ id: 1 }, { id: 1, cents: 250 }]);
  });

  it('valibot schemas: data is the schema output (defaults applied), the payload what was added', async (ctx) => {
    const created = v.object({ id: v.number(), tags: v.optional(v.array(v.string()), []) });
    const { s, sink } = typed(ctx, { schemas: { 'user.created': created } });
    await s.add('user.created', { id: 7, tags: ['a'] });
    // A producer that leaves the optional field out.
    await c.cmd('XADD', s.key, '*', 'n', 'user.created', 'p', '{"id":8}');
    const got = await take((await sink()).subscribe(), 2);
    expect(got.map((e) => e.data)).toEqual([
      { id: 7, tags: ['a'] },
      { id: 8, tags: [] },
    ]);
    expect(got[1]?.payload.toString()).toBe('{"id":8}');
    for (const e of got) await e.ack();
  });

  it('a schema refusing an add rejects with InvalidArgumentError and stores nothing', async (ctx) => {
    const { s } = typed<OrderEvents>(ctx, { codec: 'json', schemas: orderSchemas });
    const bad = { id: 1, cents: -5 };
    const err = await s.add('order.paid', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/cents/);
    const vs = typed(ctx, { schemas: { e: v.object({ id: v.number() }) } });
    await expect(vs.s.add('e', { id: 'x' as unknown as number })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
    expect(Number(await c.cmd('EXISTS', vs.s.key))).toBe(0);
  });

  it('a transforming schema: add takes its input (stored as given), data is its output; its output type is refused', async (ctx) => {
    // Types: add is typed with the schema's output (known limitation, test/types/typedStreams.ts), hence the casts.
    const { s, sink } = typed(ctx, { schemas: { 'price.set': z.object({ cents: z.string().transform(Number) }) } });
    await s.add('price.set', { cents: '250' } as unknown as { cents: number });
    await expect(s.add('price.set', { cents: 250 })).rejects.toBeInstanceOf(InvalidArgumentError);
    const [got] = await take((await sink()).subscribe(), 1);
    expect(got?.payload.toString()).toBe('{"cents":"250"}');
    expect(got?.data).toEqual({ cents: 250 });
    await got?.ack();
  });

  it('a value with no JSON form, or a codec that throws, rejects the add with InvalidArgumentError', async (ctx) => {
    const { s } = typed<{ e: unknown }>(ctx, { codec: 'json' });
    await expect(s.add('e', undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.add('e', 10n)).rejects.toBeInstanceOf(InvalidArgumentError);
    const throwing: Codec = {
      encode: () => {
        throw new Error('nope');
      },
      decode: () => null,
    };
    const t = typed<{ e: number }>(ctx, { codec: throwing });
    await expect(t.s.add('e', 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
    expect(Number(await c.cmd('EXISTS', t.s.key))).toBe(0);
  });

  it('bad codec and schemas options are refused with InvalidArgumentError, before any Redis call', () => {
    const make = (options: object) => () => new Stream(uniqueName('bad'), c.redis, options as StreamOptions);
    expect(make({ codec: 'msgpack' })).toThrow(InvalidArgumentError);
    expect(make({ codec: { encode: () => '' } })).toThrow(InvalidArgumentError);
    expect(make({ schemas: 'x' })).toThrow(InvalidArgumentError);
    expect(make({ schemas: { e: { parse: () => 1 } } })).toThrow(InvalidArgumentError);
    expect(make({ schemas: { e: null } })).toThrow(InvalidArgumentError);
  });

  for (const mode of ['process', 'processBatch'] as const) {
    it(`${mode}(): a foreign producer's entries that do not decode are dead-lettered at once with reason decode:, the handler never sees them`, async (ctx) => {
      const { s, sink } = typed<OrderEvents>(ctx, { codec: 'json', schemas: orderSchemas });
      // A producer that knows nothing of the schema (Go, another version, redis-cli).
      const notJson = String(await c.cmd('XADD', s.key, '*', 'n', 'order.created', 'p', '{not json'));
      const refused = String(await c.cmd('XADD', s.key, '*', 'n', 'order.paid', 'p', '{"id":1,"cents":"ten"}'));
      const good = await s.add('order.created', { id: 3 });
      const badUtf8 = String(await c.cmd('XADD', s.key, '*', 'n', 'order.created', 'p', Buffer.from([0x7b, 0xff, 0x7d])));
      const k = await sink({ ackGracePeriodMs: 2000 });
      const handled: string[] = [];
      const ac = new AbortController();
      const run =
        mode === 'process'
          ? k.process((ev) => void handled.push(ev.id), { signal: ac.signal })
          : k.processBatch((evs) => void handled.push(...evs.map((e) => e.id)), { signal: ac.signal });
      await waitFor(async () => (await deadLetters(c, s.name)).length === 3, { ...WAIT, what: 'three dead letters' });
      await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) === 0, WAIT);
      ac.abort();
      await run;
      expect(handled).toEqual([good]);
      const letters = await deadLetters(c, s.name);
      expect(letters.map((l) => l.source_id)).toEqual([notJson, refused, badUtf8]);
      for (const l of letters) {
        expect(l.reason).toMatch(/^decode: /);
        expect(l.n).toBeDefined();
        expect(l.deliveries).toBe('1');
        expect(l.source_sink).toBe('sink');
      }
      expect(letters[0]?.p).toBe('{not json');
      expect(letters[1]?.reason).toMatch(/cents/);
      expect(k.counters.deadLettered).toBe(3);
      expect(k.counters.acked).toBe(1);
    });
  }

  it('a filter reading data: an entry that does not decode is dead-lettered by process(), not acked as filtered', async (ctx) => {
    const { s, sink } = typed<OrderEvents>(ctx, { codec: 'json', schemas: orderSchemas });
    const bad = String(await c.cmd('XADD', s.key, '*', 'n', 'order.paid', 'p', '{"id":1,"cents":"ten"}'));
    await s.add('order.paid', { id: 2, cents: 5 });
    const big = await s.add('order.paid', { id: 3, cents: 500 });
    const k = await sink({ ackGracePeriodMs: 2000, filter: (ev) => (ev.data as { cents: number }).cents > 10 });
    const handled: string[] = [];
    const ac = new AbortController();
    const run = k.process((ev) => void handled.push(ev.id), { signal: ac.signal });
    await waitFor(async () => handled.length === 1 && (await deadLetters(c, s.name)).length === 1, {
      ...WAIT,
      what: 'the big one handled, the bad one dead-lettered',
    });
    ac.abort();
    await run;
    expect(handled).toEqual([big]);
    const [letter] = await deadLetters(c, s.name);
    expect([letter?.source_id, letter?.reason]).toEqual([bad, expect.stringMatching(/^decode: /)]);
    expect(k.counters.filtered).toBe(1);
  });

  it('a filter reading data of an asynchronous schema lets the event through (it cannot be read synchronously)', async (ctx) => {
    type E = { checked: { id: number } };
    const isId = (x: unknown): x is { id: number } =>
      typeof x === 'object' && x !== null && typeof (x as { id?: unknown }).id === 'number';
    const { s, sink } = typed<E>(ctx, { codec: 'json', schemas: { checked: asyncSchema(isId) } });
    const id = await s.add('checked', { id: 1 });
    const k = await sink({ filter: (ev) => (ev.data as { id: number }).id > 0 });
    const [ev] = await take(k.subscribe(), 1, WAIT.timeout);
    expect(ev?.id).toBe(id);
    expect(await ev?.decode()).toEqual({ id: 1 });
    expect(k.counters.filtered).toBe(0);
    await ev?.ack();
  });

  it('in a for await loop, data throws the same DecodeError on every access; payload stays the raw bytes', async (ctx) => {
    const { s, sink } = typed<OrderEvents>(ctx, { codec: 'json', schemas: orderSchemas });
    await c.cmd('XADD', s.key, '*', 'n', 'order.created', 'p', '{"id":"one"}');
    const [ev] = await take((await sink()).subscribe(), 1);
    let first: unknown;
    try {
      void ev?.data;
    } catch (err) {
      first = err;
    }
    expect(first).toBeInstanceOf(DecodeError);
    expect(first).toBeInstanceOf(PulseError);
    expect((first as DecodeError).eventId).toBe(ev?.id);
    expect((first as DecodeError).issues.length).toBeGreaterThan(0);
    expect(() => ev?.data).toThrow(first as Error);
    await expect(ev?.decode()).rejects.toBe(first);
    expect(ev?.payload.toString()).toBe('{"id":"one"}');
    await ev?.ack();
  });

  it('an asynchronous schema: add waits for it and adds stay in issue order; process() decodes before the handler', async (ctx) => {
    type E = { checked: { id: number }; plain: { id: number } };
    const isId = (x: unknown): x is { id: number } =>
      typeof x === 'object' && x !== null && typeof (x as { id?: unknown }).id === 'number';
    const { s, sink, reader } = typed<E>(ctx, { codec: 'json', schemas: { checked: asyncSchema(isId) } });
    // Issued in one tick, alternating a name with an async schema and one without.
    const adds: Array<Promise<string>> = [];
    for (let i = 0; i < 20; i++) adds.push(i % 2 === 0 ? s.add('checked', { id: i }) : s.add('plain', { id: i }));
    const refused = s.add('checked', { id: 'x' } as unknown as { id: number });
    adds.push(s.add('plain', { id: 20 }));
    await expect(refused).rejects.toBeInstanceOf(InvalidArgumentError);
    const ids = await Promise.all(adds);
    const stored = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown]>;
    expect(stored.map((e) => String(e[0]))).toEqual(ids);
    // Before decode(), an asynchronous schema cannot give data synchronously.
    const [first] = await take((await reader()).subscribe(), 1);
    expect(() => first?.data).toThrow(/asynchronously/);
    expect(await first?.decode()).toEqual({ id: 0 });
    expect(first?.data).toEqual({ id: 0 });
    const k = await sink();
    const seen: unknown[] = [];
    const ac = new AbortController();
    const run = k.process(
      (ev) => {
        seen.push(ev.data);
      },
      { signal: ac.signal },
    );
    await waitFor(() => seen.length === 21, WAIT);
    ac.abort();
    await run;
    expect(seen).toEqual(Array.from({ length: 21 }, (_, i) => ({ id: i })));
  });

  it('a custom codec encodes adds and decodes data; a codec that throws on decode gives a DecodeError', async (ctx) => {
    const decimal: Codec = {
      encode: (value) => Buffer.from(String(value)),
      decode: (bytes) => {
        const n = Number(bytes.toString());
        if (Number.isNaN(n)) throw new Error('not a number');
        return n;
      },
    };
    const { s, sink } = typed<{ n: number }>(ctx, { codec: decimal });
    await s.add('n', 42);
    await c.cmd('XADD', s.key, '*', 'n', 'n', 'p', 'forty-two');
    const got = await take((await sink()).subscribe(), 2);
    expect(got[0]?.payload.toString()).toBe('42');
    expect(got[0]?.data).toBe(42);
    expect(() => got[1]?.data).toThrow(DecodeError);
    for (const e of got) await e?.ack();
  });

  it('an untyped stream is as before: payloads stored as given, data is the payload, nothing dead-lettered', async (ctx) => {
    const s = new Stream(uniqueName('untyped'), c.redis, { maxLen: 0 });
    ctx.onTestFinished(() => s.destroy());
    await s.add('e', '{not json');
    const k = await s.newSink('sink', { startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => k.close());
    const handled: SinkEvent[] = [];
    const ac = new AbortController();
    const run = k.process((ev) => void handled.push(ev), { signal: ac.signal });
    await waitFor(() => handled.length === 1, WAIT);
    ac.abort();
    await run;
    expect(handled[0]?.payload.toString()).toBe('{not json');
    expect(handled[0]?.data).toBe(handled[0]?.payload);
    expect(k.counters.deadLettered).toBe(0);
    await stays(async () => Number(await c.cmd('EXISTS', `pulse:stream:${s.name}:dead`)) === 0, 100, 'no dead letter');
  });
});
