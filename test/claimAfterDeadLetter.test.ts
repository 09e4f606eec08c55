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
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { intercepted } from './support/controlIntercept.js';

const GRACE = 400;

describe.each(CLIENT_KINDS)('a claim answered after the dead letter of an event that does not decode (%s)', (kind) => {
  it.for(['process', 'processBatch'] as const)(
    '%s: the dead-lettered event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const x = await intercepted(ctx, kind);
      const { logger, lines } = recordingLogger();
      let failDecode = () => {};
      const decodeFails = new Promise<{ issues: Array<{ message: string }> }>(
        (r) => (failDecode = () => r({ issues: [{ message: 'not an order' }] })),
      );
      const schema = {
        '~standard': { version: 1 as const, vendor: 'test', validate: (_: unknown) => decodeFails },
      };
      const s = new Stream(uniqueName('claim-after-dead'), x.redis, {
        logger: logger as Logger,
        maxLen: 0,
        schemas: { e: schema },
      });
      // Added raw: the add itself would wait for the schema.
      const id = String(await x.c.cmd('XADD', s.key, '*', 'n', 'e', 'p', '{"id":0}'));
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
      let touchesHeld = true;
      let letTouchesGo = () => {};
      const touchesGo = new Promise<void>((r) => (letTouchesGo = r));
      x.userHook = async (args) => {
        if (touchesHeld && /^EVAL/i.test(String(args[0])) && args.map(String).includes(id)) await touchesGo;
      };
      let claimed = false;
      x.hook = async (args) => {
        if (claimed || String(args[0]).toUpperCase() !== 'XRANGE' || String(args[2]) !== id) return;
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
        const kept = () => lines.some((l) => /not handed out again/.test(String(l.msg)));
        await waitFor(() => sink.counters.redelivered > 0 || kept(), {
          timeout: 5000,
          what: 'the claimed event handed out or kept',
        });
        await waitFor(async () => Number(((await x.c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
          timeout: 5000,
          what: 'nothing pending',
        });
        const log = `calls ${JSON.stringify(calls)}; log ${JSON.stringify(lines.map((l) => l.msg))}`;
        expect(sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, deadLettered: 1, lost: 0 });
        expect(calls, log).toEqual([]);
        expect(Number(await x.c.cmd('XLEN', `${s.key}:dead`)), log).toBe(1);
        expect(
          lines.filter((l) => /another consumer took it/.test(String(l.msg))),
          log,
        ).toEqual([]);
      } finally {
        stop.abort();
        letTouchesGo();
        await within(
          run.catch(() => {}),
          10_000,
          'the handler run',
        );
        await within(sink.close(), 10_000, 'close');
      }
    },
  );
});
