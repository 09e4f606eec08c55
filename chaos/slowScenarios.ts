/**
 * Handlers slower than the grace period (SEMANTICS.md section 9, issue 13
 * defect 1): four sinks on one stream, `process()` and `for await`, each with
 * and without `maxDeliveries`, some handlers taking 2-3 x grace. No fault is
 * injected, so nothing explains a redelivery under `process()`, a duplicate,
 * a dead letter of a handled event or an event handed out after its consumer
 * dead-lettered it.
 */

import type { WorkerConfig } from './consumers.js';
import { contractChecks, settle } from './contract.js';
import { byProfile } from './measure.js';
import type { ScenarioDef } from './run.js';

const SINKS: Array<{ name: string; mode: WorkerConfig['mode']; maxDeliveries?: number }> = [
  { name: 'process', mode: 'process' },
  { name: 'process-md1', mode: 'process', maxDeliveries: 1 },
  { name: 'forawait', mode: 'subscribe' },
  { name: 'forawait-md2', mode: 'subscribe', maxDeliveries: 2 },
];

export const slowHandlers: ScenarioDef = {
  name: 'slow-handlers',
  title: 'handlers 2-3 x slower than the grace period, process() and for await, with and without maxDeliveries',
  options: { expectReportedLost: true },
  limitMs: { short: 40_000, full: 180_000 },
  async body(run, profile) {
    const grace = 600;
    const perSink = byProfile(profile, 1, 2);
    const events = byProfile(profile, 20, 300);
    const rate = byProfile(profile, 20, 20);
    const base = run.config({
      graceMs: grace,
      concurrency: 1,
      bufferSize: 10,
      maxPolled: 10,
      workMs: [1, 5],
      slowEvery: 10,
      slowPhase: 2,
      slowMs: [2 * grace, 3 * grace],
      // A for await loop that works long on one event says so (SEMANTICS section 9).
      inProgressMs: grace / 3,
    });
    const starts: Promise<unknown>[] = [];
    for (const s of SINKS)
      for (let i = 0; i < perSink; i++) {
        const cfg: WorkerConfig = { ...base, sink: s.name, mode: s.mode, client: i % 2 === 0 ? 'ioredis' : 'node-redis' };
        if (s.maxDeliveries) cfg.maxDeliveries = s.maxDeliveries;
        starts.push(run.worker(`${s.name}-${i}`, cfg));
      }
    await Promise.all(starts);
    run.producer.start({ rate, total: events, maxMs: 60_000, maxInFlight: 10 });
    await run.producer.done;
    // Every event accounted for in every sink, then 3 x grace for late redeliveries to show.
    await settle(
      run,
      SINKS.map((s) => s.name),
      byProfile(profile, 20_000, 120_000),
      3 * grace,
    );
    await run.stopWorkers();
    const r = await contractChecks(run, { sinks: SINKS.map((s) => s.name), readers: [], graceMs: grace });
    const calls = run.oracle.deliveries.length;
    run.note(
      `${calls} handler calls for ${run.oracle.published.size} events in ${SINKS.length} sinks; per sink: ${r.sinks.map((l) => `${l.sink} ${l.handled}h/${l.deadLettered}d/${l.duplicates}dup`).join(', ')}`,
    );
    const bad = r.sinks.reduce((n, l) => n + l.redeliveredWhileAlive + l.handedAfterOwnDead + l.deadAfterHandled, 0);
    return `${bad} redelivered under process(), handed after a dead letter or dead-lettered after handled`;
  },
};
