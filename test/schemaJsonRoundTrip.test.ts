/**
 * What the README's "Typed events" says of values whose JSON form differs
 * (review D, documented rather than changed): `add()` validates the value as
 * given, consumers validate what `'json'` decodes. A `Date` that `z.date()`
 * accepts on `add` becomes a string, which `z.date()` refuses on delivery:
 * dead-lettered with `decode:`. A schema that accepts the JSON form too
 * (`z.coerce.date()`) delivers it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('schema and JSON round trip (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const coerce of [false, true])
    it(`a Date added under ${coerce ? 'z.coerce.date() is delivered as a Date' : 'z.date() is dead-lettered with decode:'}`, async ({
      onTestFinished,
    }) => {
      const name = uniqueName('jsonRoundTrip');
      const at = coerce ? z.coerce.date() : z.date();
      const s = new Stream(name, c.redis, { schemas: { e: z.object({ at }) }, maxLen: 0 });
      onTestFinished(async () => {
        await s.destroy();
        await c.cmd('DEL', `pulse:stream:${name}:dead`);
      });
      const sink = await s.newSink('k', { startAt: 'oldest', blockMs: 100 });
      onTestFinished(() => sink.close());
      const when = new Date(1_700_000_000_000);
      const id = await s.add('e', { at: when });
      const seen: unknown[] = [];
      const ac = new AbortController();
      onTestFinished(() => ac.abort());
      const run = sink.process((ev) => void seen.push((ev as SinkEvent).data), { signal: ac.signal });
      await waitFor(() => sink.counters.acked + sink.counters.deadLettered === 1, { timeout: 5000 });
      ac.abort();
      await run;
      const dead = await readDeadLetters(s);
      if (coerce) {
        expect(seen).toEqual([{ at: when }]);
        expect(dead).toEqual([]);
      } else {
        expect(seen).toEqual([]);
        expect(dead.map((d) => [d.sourceId, d.reason.startsWith('decode:')])).toEqual([[id, true]]);
      }
    });
});
