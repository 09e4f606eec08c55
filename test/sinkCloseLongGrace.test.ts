/**
 * close() leaves the events of process() handlers still running in progress
 * (README: a handler finishing during shutdown acks without another consumer
 * having handled it), also when instances of the sink run with different
 * grace periods (a rolling deploy). The closing instance stops its liveness
 * beats and soon no longer counts as live; a short-grace instance then
 * claimed by its own grace the event the closing one still handled, which it
 * refreshes only on its own, longer, schedule: handled twice (a review of the
 * rolling-deploy change). An instance's grace now holds for its events until
 * it is forgotten, live or not.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, stays, uniqueName, waitFor } from './support/clients.js';

/** The closing instance's grace: its in-progress touches come every third of it; not live 2 graces after its last beat. */
const GRACE_A = 1200;
/** Past A's last beat by more than 2 x GRACE_A: A is no longer live while its handler still runs. */
const HANDLER_MS = 3200;

describe.concurrent.each(CLIENT_KINDS)('close() during a long handler, grace periods differ (%s)', (kind) => {
  it.for([
    { noAck: false, graceB: 100 },
    { noAck: true, graceB: 100 },
  ])(
    'another instance (noAck $noAck, grace $graceB ms) does not take the event still handled',
    async ({ noAck, graceB }, ctx) => {
      const c = await connect(kind);
      ctx.onTestFinished(() => c.close());
      const name = uniqueName('closelong');
      const sinkName = uniqueName('sink');
      const sA = new Stream(name, c.redis, { maxLen: 0 });
      ctx.onTestFinished(() => sA.destroy().catch(() => {}));
      const a = await sA.newSink(sinkName, { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE_A });
      ctx.onTestFinished(() => a.close());
      let started = '';
      let done = false;
      const runA = a.process(async (ev) => {
        started = ev.id;
        await new Promise((r) => setTimeout(r, HANDLER_MS));
        done = true;
      });
      const id = await sA.add('e', 'x');
      await waitFor(() => started === id, { what: 'A handles the event' });
      const b = await new Stream(name, c.redis, { maxLen: 0 }).newSink(sinkName, {
        startAt: 'oldest',
        blockMs: 100,
        ackGracePeriodMs: graceB,
        noAck,
      });
      ctx.onTestFinished(() => b.close());
      const seenB: string[] = [];
      const acB = new AbortController();
      const runB = b.process(
        (ev) => {
          seenB.push(ev.id);
        },
        { signal: acB.signal },
      );
      await a.close();
      await waitFor(() => done, { what: "A's handler returns", timeout: 2 * HANDLER_MS });
      await runA;
      // B's claims run every few ms at its grace: what it would take, it took by now or soon after.
      await stays(() => seenB.length === 0, 3 * graceB, 'B never handed the event A still handled');
      expect(a.counters.staleAcks).toBe(0);
      expect(a.counters.acked).toBe(1);
      acB.abort();
      await runB;
    },
  );
});
