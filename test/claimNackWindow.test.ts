/**
 * A `process()` handler that throws has its event nacked with the retry delay; the nack first
 * waits for the run's in-progress touches to land (up to a grace period: they travel on another
 * connection and one landing after the nack would undo its delay). A claim of the sink's own in
 * that window (the keep-alives late) took the event back and handed it out at once: the retry
 * came before the nack, without its delay (README "Retries": redelivered after the retry delay).
 *
 * Made certain with nothing of Redis mocked: every script naming the event (the keep-alives on
 * the user's client, the nack on the sink's own connection) is held back until the sink's claim
 * took the event and its read was answered.
 *
 * The same for a `for await` loop's own `ev.nack()`: held until it lands.
 *
 * Failed before the fix (both clients, all three): the event was handed out again before the nack
 * was sent (`redelivered` 1 then, and with a free slot a second handler call).
 */
import { describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { intercepted } from './support/controlIntercept.js';

const GRACE = 400;

describe.each(CLIENT_KINDS)('a claim of ours while a failed handler waits to nack (%s)', (kind) => {
  it.for(['process', 'processBatch', 'subscribe'] as const)(
    '%s: the event comes back through the nack, not before it',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const x = await intercepted(ctx, kind);
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('claim-nack'), x.redis, { logger: logger as Logger, maxLen: 0 });
      const id = String(await s.add('e', 'payload'));
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
      let scriptsHeld = true;
      let blocked = false;
      let letScriptsGo = () => {};
      const scriptsGo = new Promise<void>((r) => (letScriptsGo = r));
      const namesIt = (args: readonly unknown[]) => /^EVAL/i.test(String(args[0])) && args.map(String).includes(id);
      // The keep-alives, on the user's client.
      x.userHook = async (args) => {
        if (!scriptsHeld || !namesIt(args)) return;
        blocked = true;
        await scriptsGo;
      };
      // The nack, on the sink's own connection (where its claims go too).
      let claimed = false;
      x.hook = async (args) => {
        if (String(args[0]).toUpperCase() === 'XRANGE' && String(args[2]) === id) claimed = true;
        if (scriptsHeld && namesIt(args)) await scriptsGo;
      };
      // Each call, and whether the scripts held back (the nack among them) had been let go by then.
      const calls: Array<{ n: number; afterNack: boolean }> = [];
      const handle = async (n: number) => {
        calls.push({ n, afterNack: !scriptsHeld });
        if (calls.length === 1) {
          // Throws once its first keep-alive is held back: the nack then waits behind it.
          await waitFor(() => blocked, { timeout: 5000, what: 'a keep-alive held back' });
          throw new Error('handler fails once');
        }
      };
      const stop = new AbortController();
      const retry = { delayMs: 20, maxDelayMs: 20 };
      const consume = () => {
        if (how === 'process')
          return sink.process((ev) => handle(ev.deliveryCount), { signal: stop.signal, retry, concurrency: 2 });
        if (how === 'processBatch')
          return sink.processBatch(
            async (evs) => {
              for (const ev of evs) await handle(ev.deliveryCount);
            },
            { signal: stop.signal, retry, maxBatch: 1, concurrency: 2 },
          );
        // A for-await loop nacks at once (no keep-alives: the event idles from its delivery).
        return (async () => {
          for await (const ev of sink.subscribe({ signal: stop.signal })) {
            calls.push({ n: ev.deliveryCount, afterNack: !scriptsHeld });
            if (calls.length === 1) void ev.nack({ delayMs: 20 }).catch(() => {});
            else void ev.ack().catch(() => {});
          }
        })();
      };
      const run = consume();
      try {
        await waitFor(() => claimed, { timeout: 25 * GRACE, what: "the sink's claim of the failed event" });
        const kept = () => lines.some((l) => /not handed out again/.test(String(l.msg)));
        // Handed out again: to the free slot (concurrency 2), or to the buffer.
        await waitFor(() => sink.counters.redelivered > 0 || kept(), {
          timeout: 5000,
          what: 'the claimed event handed out or kept',
        });
        const beforeNack = { ...sink.counters };
        scriptsHeld = false;
        letScriptsGo();
        await waitFor(() => calls.length === 2, { timeout: 5000, what: 'the retry' });
        await waitFor(async () => Number(((await x.c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
          timeout: 5000,
          what: 'nothing pending',
        });
        const log = `calls ${JSON.stringify(calls)}; log ${JSON.stringify(lines.map((l) => l.msg))}`;
        expect(beforeNack.redelivered, `${log}: redelivered before the nack`).toBe(0);
        expect(calls, log).toEqual([
          { n: 1, afterNack: false },
          { n: 2, afterNack: true },
        ]);
        expect(sink.counters, log).toMatchObject({ redelivered: 1, deadLettered: 0, lost: 0 });
      } finally {
        stop.abort();
        scriptsHeld = false;
        letScriptsGo();
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
