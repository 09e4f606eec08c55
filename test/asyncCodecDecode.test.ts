/**
 * A codec whose `decode` answers a promise (a decompression, a schema
 * registry look-up) is awaited like a schema that validates asynchronously
 * (review D). It used to be taken as is: the handler got a promise as
 * `data`, a payload the codec rejects was acked as handled instead of
 * dead-lettered, its rejection went unhandled, and a schema validated the
 * promise object rather than the decoded value.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { z } from 'zod';
import {
  type Codec,
  DecodeError,
  PulseError,
  readDeadLetters,
  type SinkEvent,
  Stream,
  type TypedStreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const asyncCodec: Codec = {
  encode: (v) => JSON.stringify(v),
  decode: async (b: Buffer) => {
    await new Promise((r) => setImmediate(r));
    return JSON.parse(b.toString('utf8')) as unknown;
  },
};

type Events = { e: { a: number } };

describe.concurrent.each(CLIENT_KINDS)('async codec decode (%s)', (kind) => {
  let c: TestClient;
  // Rejections nobody handles (a promise handed over as data, never awaited) fail the run.
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown): void => void unhandled.push(r);
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    c = await connect(kind);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await c.close();
    expect(unhandled).toEqual([]);
  });

  function stream(ctx: TestContext, options: TypedStreamOptions<Events>): { s: Stream<Events>; key: string } {
    const name = uniqueName('asyncDecode');
    const s = new Stream<Events>(name, c.redis, { ...options, maxLen: 0 });
    ctx.onTestFinished(async () => {
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${name}:dead`);
    });
    return { s, key: `pulse:stream:${name}` };
  }

  for (const mode of ['process', 'processBatch'] as const)
    for (const withSchema of [false, true])
      it(`${mode}${withSchema ? ' with a schema' : ''}: the decoded value is handed over, a payload that does not decode is dead-lettered with decode:`, async (ctx) => {
        const schemas = withSchema ? { e: z.object({ a: z.number().int() }) } : undefined;
        const { s, key } = stream(ctx, { codec: asyncCodec, schemas });
        const sink = await s.newSink('k', { startAt: 'oldest', blockMs: 100 });
        ctx.onTestFinished(() => sink.close());
        const bad = String(await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'not json'));
        // Decodes, but the schema (when there is one) refuses the decoded value: a promise would have been refused for its shape.
        const refused = String(await c.cmd('XADD', key, '*', 'n', 'e', 'p', '{"a":1.5}'));
        const good = await s.add('e', { a: 1 });
        const seen: Array<{ id: string; data: unknown }> = [];
        const on = (ev: SinkEvent): void => void seen.push({ id: ev.id, data: ev.data });
        const ac = new AbortController();
        ctx.onTestFinished(() => ac.abort());
        const run =
          mode === 'process'
            ? sink.process((ev) => on(ev as SinkEvent), { signal: ac.signal })
            : sink.processBatch(
                (evs) => {
                  for (const ev of evs) on(ev as SinkEvent);
                },
                { signal: ac.signal },
              );
        await waitFor(() => sink.counters.acked + sink.counters.deadLettered === 3, { timeout: 5000 });
        ac.abort();
        await run;
        const dead = await readDeadLetters(s);
        const deadIds = withSchema ? [bad, refused] : [bad];
        expect(dead.map((d) => d.sourceId)).toEqual(deadIds);
        expect(dead.every((d) => d.reason.startsWith('decode:'))).toBe(true);
        expect(dead[0]?.reason).toContain('the codec could not decode the payload');
        if (withSchema) expect(dead[1]?.reason).toContain('the schema refused the payload');
        const handed = withSchema
          ? [{ id: good, data: { a: 1 } }]
          : [
              { id: refused, data: { a: 1.5 } },
              { id: good, data: { a: 1 } },
            ];
        expect(seen).toEqual(handed);
        expect(await c.cmd('XPENDING', key, 'k')).toEqual([0, null, null, null]);
      });

  it('a reader event: data before decode() says to await it; decode() resolves, then data is the value', async (ctx) => {
    const { s, key } = stream(ctx, { codec: asyncCodec });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    await s.add('e', { a: 2 });
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'not json');
    const [ok, ko] = await take(reader.subscribe(), 2);
    expect(() => ok?.data).toThrow(PulseError);
    expect(() => ok?.data).toThrow(/decodes asynchronously/);
    await expect(ok?.decode()).resolves.toEqual({ a: 2 });
    expect(ok?.data).toEqual({ a: 2 });
    await expect(ko?.decode()).rejects.toBeInstanceOf(DecodeError);
    expect(() => ko?.data).toThrow(DecodeError);
  });
});
