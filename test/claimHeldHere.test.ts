/**
 * SEMANTICS.md section 9: while a consumer is alive and its handlers run, neither the event a
 * handler works on nor those waiting behind it are redelivered, however long that takes. With
 * both clients, for process() and processBatch().
 *
 * Failed before the fix (a full local run: processDecodeHang, "nothing redelivered", both clients
 * at once): the keep-alives of a running event (every grace / 3) and of the buffered ones (every
 * grace / 4) were late when the process's event loop was held up for most of a grace period time
 * after time, too short each for a stall the sink notices; the sink's own claim then found them
 * idle, took them back from its very consumer, and handed them out again (`redelivered` 1, a
 * second delivery of the running event, or of the waiting one). Here the test holds up the event
 * loop itself, the way a loaded machine did (`holdUpEventLoop`), with a grace period of 400 ms.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor } from './support/clients.js';

const GRACE = 400;

/**
 * Holds up this process's event loop `times` times for `ms`, with a 40 ms timer between: run by
 * several loops at once, their timers come due together and each busy turn runs right after the
 * one before, so the sink's timers still run (its liveness beats see no stall) while Redis'
 * replies wait seconds to be read, as in a worker starved by its neighbours.
 */
async function holdUpEventLoop(times: number, ms: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    while (performance.now() - start < ms) {
      // Busy: a CPU-starved or GC-bound process, not an idle wait.
    }
    await new Promise((r) => setTimeout(r, 40));
  }
}

/**
 * The file's four cases run at once: the event loop is held up once for all of them, once each is
 * ready (or 5 s after the first is, when some are filtered out). Held up by each, it stalled 16 s.
 */
const CASES = CLIENT_KINDS.length * 2;
let arrived = 0;
let allReady = () => {};
const ready = new Promise<void>((r) => (allReady = r));
let holding: Promise<void> | undefined;
async function heldUp(): Promise<void> {
  if (++arrived === CASES) allReady();
  await Promise.race([ready, new Promise((r) => setTimeout(r, 5000))]);
  holding ??= Promise.all([0, 1, 2, 3].map(() => holdUpEventLoop(3, 330))).then(() => {});
  await holding;
}

describe.concurrent.each(CLIENT_KINDS)('a sink whose keep-alives come late (%s)', (kind) => {
  it.for<'process' | 'processBatch'>(['process', 'processBatch'])(
    '%s: the running event and the one waiting behind it are not handed out again',
    { timeout: 30_000 },
    async (how, ctx) => {
      const c = await connect(kind);
      ctx.onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('heldHere'), c.redis, { maxLen: 0, logger });
      ctx.onTestFinished(() => s.destroy());
      const first = (await s.add('e', 'first')) as string;
      const second = (await s.add('e', 'second')) as string;
      const sink = await s.newSink('sink', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
      ctx.onTestFinished(() => sink.close());
      const calls: Array<{ id: string; n: number }> = [];
      let release = () => {};
      const released = new Promise<void>((r) => (release = r));
      const handle = async (events: SinkEvent[]) => {
        for (const ev of events) calls.push({ id: ev.id, n: ev.deliveryCount });
        // The first call runs until released: its event in progress, the second waiting behind it.
        if (calls.length === 1) await released;
      };
      const stop = new AbortController();
      const run =
        how === 'process'
          ? sink.process((ev) => handle([ev]), { signal: stop.signal })
          : sink.processBatch(handle, { maxBatch: 1, signal: stop.signal });
      await waitFor(() => calls.length === 1 && sink.counters.delivered === 2, {
        timeout: 10_000,
        what: 'both read, the first handled',
      });

      await heldUp();
      release();
      await waitFor(() => calls.length >= 2, { timeout: 10_000, what: 'the second handled' });
      const pending = async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]);
      await waitFor(async () => (await pending()) === 0, { timeout: 10_000, what: 'both acked' });
      stop.abort();
      await run;
      const heldBack = lines.filter((l) => /claimed events this instance holds/.test(String(l.msg)));
      expect(calls, `log ${JSON.stringify(heldBack)}`).toEqual([
        { id: first, n: 1 },
        { id: second, n: 1 },
      ]);
      expect(sink.counters).toMatchObject({ delivered: 2, redelivered: 0, acked: 2, deadLettered: 0, lost: 0 });
    },
  );
});
