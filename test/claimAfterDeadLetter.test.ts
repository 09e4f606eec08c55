/**
 * SEMANTICS.md section 9: "An event that a consumer moved to the dead-letter stream ... is never
 * handed to a handler afterwards by that consumer." An event that does not decode is dead-lettered
 * by `process()` and `processBatch()` on the user's client (the dead letter acks it); a claim of
 * the sink's own (on its own connection) that ran in Redis before it, its keep-alive late, took it
 * back, and its read came back after the dead letter settled: the event was handed out again
 * (`redelivered` 1, a second decode, a second dead letter refused as "another consumer took it").
 *
 * Made certain with nothing of Redis mocked: the decode fails only when the sink reads what its
 * claim took (the XRANGE on its own connection, held until the dead letter settled), and the
 * event's keep-alives (scripts naming it, on the user's client) are held back until then.
 *
 * Failed before the fix (both clients, process() and processBatch()): redelivered 1.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { claimRace, claimRead, GRACE, scriptNaming } from './support/claimRace.js';
import { CLIENT_KINDS, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)('a claim answered after the dead letter of an event that does not decode (%s)', (kind) => {
  it.for(['process', 'processBatch'] as const)(
    '%s: the dead-lettered event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      let failDecode = () => {};
      const decodeFails = new Promise<{ issues: Array<{ message: string }> }>(
        (r) => (failDecode = () => r({ issues: [{ message: 'not an order' }] })),
      );
      const schema = {
        '~standard': { version: 1 as const, vendor: 'test', validate: (_: unknown) => decodeFails },
      };
      const { x, sink, id, s, lines, ...race } = await claimRace(ctx, kind, 'claim-after-dead', {
        // Typed: as an untyped stream for the fixture, which handles events only as the sink hands them out.
        makeStream: (name, redis, logger) =>
          new Stream(name, redis, { logger, maxLen: 0, schemas: { e: schema } }) as unknown as Stream,
        // Added raw: the add itself would wait for the schema.
        add: (st, ic) => ic.c.cmd('XADD', st.key, '*', 'n', 'e', 'p', '{"id":0}'),
      });
      let touchesHeld = true;
      let letTouchesGo = () => {};
      const touchesGo = new Promise<void>((r) => (letTouchesGo = r));
      x.userHook = async (args) => {
        if (touchesHeld && scriptNaming(args, id)) await touchesGo;
      };
      let claimed = false;
      x.hook = async (args) => {
        if (claimed || !claimRead(args, id)) return;
        claimed = true;
        touchesHeld = false;
        letTouchesGo();
        failDecode();
        await waitFor(() => sink.counters.deadLettered === 1, { timeout: 5000, what: 'the dead letter settled' });
        await new Promise((r) => setImmediate(r));
      };
      const calls: string[] = [];
      const stop = new AbortController();
      const run =
        how === 'process'
          ? sink.process(async (ev) => void calls.push(ev.id), { signal: stop.signal })
          : sink.processBatch(async (evs) => void calls.push(...evs.map((ev) => ev.id)), { signal: stop.signal });
      try {
        await waitFor(() => claimed, { timeout: 25 * GRACE, what: "the sink's claim of the event being decoded" });
        await race.handedOutOrKept();
        await race.nothingPending();
        const log = race.log(calls);
        expect(sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, deadLettered: 1, lost: 0 });
        expect(calls, log).toEqual([]);
        expect(Number(await x.c.cmd('XLEN', `${s.key}:dead`)), log).toBe(1);
        expect(
          lines.filter((l) => /another consumer took it/.test(String(l.msg))),
          log,
        ).toEqual([]);
      } finally {
        letTouchesGo();
        await race.end(stop, run);
      }
    },
  );
});
