/**
 * SEMANTICS.md section 9: while a consumer is alive and its handlers run, neither the event a
 * handler works on nor those waiting behind it are redelivered, however long that takes, and an
 * event a handler finished is never dead-lettered. With both clients, for process() and
 * processBatch(), with and without maxDeliveries.
 *
 * Failed before the fix (a full local run: processDecodeHang, "nothing redelivered", both clients
 * at once): the keep-alives of a running event (every grace / 3) and of the buffered ones (every
 * grace / 4) were late when the process's event loop was starved, and the sink's own claim found
 * them idle, took them back from its very consumer and handed them out again (`redelivered` 1, a
 * second delivery of the running event, or of the waiting one); with `maxDeliveries: 1` it
 * dead-lettered both, the one a handler was running and the one no handler had seen. Here the test
 * starves its own event loop the way a loaded machine did (`holdUpEventLoop`), grace 400 ms.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { handleBy } from './support/claimRace.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';

const GRACE = 400;
const WAIT = { timeout: 10_000 };

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
 * The two clients' cases run at once: the event loop is held up once for both, once each is ready
 * (or 5 s after the first is, when one is filtered out).
 */
let arrived = 0;
let allReady = () => {};
const ready = new Promise<void>((r) => (allReady = r));
let holding: Promise<void> | undefined;
async function heldUp(): Promise<void> {
  if (++arrived === CLIENT_KINDS.length) allReady();
  await Promise.race([ready, new Promise((r) => setTimeout(r, 5000))]);
  holding ??= Promise.all([0, 1, 2, 3].map(() => holdUpEventLoop(3, 330))).then(() => {});
  await holding;
}

/** One sink over its own stream: two events, the first one's handler running until released. */
async function scenario(c: TestClient, how: 'process' | 'processBatch', maxDeliveries: number | undefined) {
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('heldHere'), c.redis, { maxLen: 0, logger });
  const first = (await s.add('e', 'first')) as string;
  const second = (await s.add('e', 'second')) as string;
  const sink = await s.newSink('sink', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE, maxDeliveries });
  const calls: Array<{ id: string; n: number }> = [];
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  const handle = async (events: SinkEvent[]) => {
    for (const ev of events) calls.push({ id: ev.id, n: ev.deliveryCount });
    if (calls.length === 1) await released;
  };
  const stop = new AbortController();
  const run = handleBy(sink, how, handle, { signal: stop.signal });
  const what = `${how}${maxDeliveries ? `, maxDeliveries ${maxDeliveries}` : ''}`;
  await waitFor(() => calls.length === 1 && sink.counters.delivered === 2, {
    ...WAIT,
    what: `${what}: both read, the first handled`,
  });
  // As the handlers held their events (before the release): what SEMANTICS section 9 promises.
  let held: { counters: object; calls: typeof calls; dead: number } | undefined;
  return {
    async holding() {
      held = { counters: { ...sink.counters }, calls: [...calls], dead: Number(await c.cmd('XLEN', `${s.key}:dead`)) };
    },
    release,
    async check() {
      await waitFor(() => calls.some((x) => x.id === second), { ...WAIT, what: `${what}: the second handled` });
      const pending = async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]);
      await waitFor(async () => (await pending()) === 0, { ...WAIT, what: `${what}: both settled` });
      stop.abort();
      await run;
      const said = lines.filter((l) => /this instance (still )?holds/.test(String(l.msg)));
      const log = `${what}; log ${JSON.stringify(said)}; calls ${JSON.stringify(calls)}`;
      expect(held?.calls, log).toEqual([{ id: first, n: 1 }]);
      expect(held?.counters, log).toMatchObject({ delivered: 2, redelivered: 0, deadLettered: 0, lost: 0 });
      expect(held?.dead, `${log}: dead letters`).toBe(0);
      // Each handed out once, in order, also after the release (claimAfterAck.test.ts: a claim
      // answered after a handler's ack took that event back).
      expect(calls, log).toEqual([
        { id: first, n: 1 },
        { id: second, n: 1 },
      ]);
      expect(sink.counters.lost, log).toBe(0);
      await sink.close();
      await s.destroy();
    },
  };
}

describe.concurrent.each(CLIENT_KINDS)('a sink whose keep-alives come late (%s)', (kind) => {
  it('the event a handler runs and the one waiting behind it: not handed out again, not dead-lettered', {
    timeout: 30_000,
  }, async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const cases = await Promise.all(
      (['process', 'processBatch'] as const).flatMap((how) => [scenario(c, how, undefined), scenario(c, how, 1)]),
    );
    await heldUp();
    for (const k of cases) await k.holding();
    for (const k of cases) k.release();
    for (const k of cases) await k.check();
  });
});
