/**
 * Consumers that leave and come back (an aborted `process()`, a `break` out
 * of a `for await` loop) every few events, with `maxDeliveries: 1`: what a
 * consumer buffered but never handed out is given back with the delivery
 * count it had, and taken back at once by the same instance when it comes
 * back within the grace period (giveBack.ts), or goes to another instance
 * after it (every third pause lasts 1.5 x grace). No fault is injected: a
 * dead letter (a delivery counted twice), a duplicate or a loss is a defect.
 * The pauses make consuming slow (about 20 events a second per consumer):
 * the full run adds 2000 events so that they drain within its two minutes.
 */

import { contractChecks, settle } from './contract.js';
import { byProfile } from './measure.js';
import type { ScenarioDef } from './run.js';

const SINKS = [
  { name: 'pr-process', mode: 'process' as const },
  { name: 'pr-forawait', mode: 'subscribe' as const },
];

export const pauseResume: ScenarioDef = {
  name: 'pause-resume',
  title: 'consumers leave and come back every few events (aborted process(), break), maxDeliveries 1',
  options: {},
  limitMs: { short: 40_000, full: 180_000 },
  async body(run, profile) {
    // The short run (npm test) shares two cores with the rest of the suite: a consumer process
    // starved past a 600 ms grace period had its events taken over, and with maxDeliveries 1 they
    // were dead-lettered (35 in one clean-clone CI run on 2026-12-06, none alone): that is the
    // contract under a stalled consumer, not what this scenario checks. Twice that there.
    const grace = byProfile(profile, 1200, 600);
    const base = run.config({
      graceMs: grace,
      concurrency: 2,
      bufferSize: 20,
      maxPolled: 20,
      workMs: [1, 4],
      maxDeliveries: 1,
      pauseEvery: 7,
    });
    const starts: Promise<unknown>[] = [];
    for (const s of SINKS)
      for (const client of ['ioredis', 'node-redis'] as const)
        starts.push(run.worker(`${s.name}-${client}`, { ...base, sink: s.name, mode: s.mode, client }));
    await Promise.all(starts);
    run.producer.start({
      rate: byProfile(profile, 200, 400),
      total: byProfile(profile, 250, 2000),
      maxMs: 60_000,
      maxInFlight: 20,
    });
    await run.producer.done;
    await settle(
      run,
      SINKS.map((s) => s.name),
      byProfile(profile, 20_000, 120_000),
      3 * grace,
    );
    await run.stopWorkers();
    const r = await contractChecks(run, { sinks: SINKS.map((s) => s.name), readers: [], graceMs: grace });
    const dead = r.sinks.reduce((n, l) => n + l.deadLettered, 0);
    run.check(
      'nothing dead-lettered (no handler failed: a delivery counted twice would be)',
      dead === 0,
      `${dead} dead-lettered`,
    );
    const counters = run.oracle.workers.map(
      (w) => `${w.slot} ${w.stats?.counters.delivered ?? 0}d/${w.stats?.counters.redelivered ?? 0}r`,
    );
    run.note(`per consumer: ${counters.join(', ')}`);
    return `${r.sinks.map((l) => `${l.sink} ${l.handled}h/${l.duplicates}dup`).join(', ')}, ${dead} dead-lettered`;
  },
};
