/** Faults of a consumer process: kill -9, and SIGSTOP/SIGCONT. */
import { watchRedisStalls } from './contract.js';
import { pause, randomBetween, waitUntil } from './harness.js';
import { sinkLedger } from './ledger.js';
import { byProfile, claimedAfter, handledElsewhereAfter, ms, progressAfter, stopWhileOwning, warmedUp } from './measure.js';
import type { ScenarioDef } from './run.js';

interface KillRecord {
  slot: string;
  pid: number;
  consumer: string;
  at: number;
  pending: string[];
  claimedMs: number | undefined;
  handledMs: number | undefined;
}

/** kill -9 of one of three consumers every few seconds, restarted after 0 to 3 x grace. */
export const kill9: ScenarioDef = {
  name: 'kill-9',
  title: 'kill -9 of one of three consumers every few seconds, restarted after 0-3 x grace',
  limitMs: { short: 40_000, full: 240_000 },
  async body(run, profile) {
    const grace = byProfile(profile, 500, 1000);
    const events = byProfile(profile, 1500, 10_000);
    const rate = byProfile(profile, 350, 250);
    const killEvery = byProfile(profile, 1200, 3000);
    // Slow enough handlers that a kill usually finds events in flight, some of them reported and not yet acked.
    const cfg = run.config({ graceMs: grace, concurrency: 8, workMs: [10, 40], ackDelayMs: [0, 10] });
    const slots = ['c1', 'c2', 'c3'];
    await Promise.all(slots.map((s) => run.worker(s, cfg)));
    run.producer.start({ rate, total: events, maxMs: (events / rate) * 1000 + 20_000, maxInFlight: 20 });
    let producing = true;
    void run.producer.done.finally(() => {
      producing = false;
    });

    const kills: KillRecord[] = [];
    const watchers: Promise<void>[] = [];
    const restarts: Promise<unknown>[] = [];
    for (let i = 0; i < 200 && producing; i++) {
      await pause(randomBetween(0.5, 1.5) * killEvery);
      if (!producing) break;
      const live = [...run.current().values()].filter((w) => w.alive && w.readyAt > 0);
      const victim = live[Math.floor(Math.random() * live.length)];
      if (!victim || live.length < 2) continue;
      const at = Date.now();
      await victim.kill9();
      const pending = await run.admin.pendingOf(run.key, run.sinkName, victim.consumer).catch(() => []);
      const rec: KillRecord = {
        slot: victim.slot,
        pid: victim.pid,
        consumer: victim.consumer,
        at,
        pending,
        claimedMs: undefined,
        handledMs: undefined,
      };
      kills.push(rec);
      watchers.push(
        claimedAfter(run, rec.consumer, at, 10 * grace).then((t) => {
          rec.claimedMs = t;
        }),
      );
      restarts.push(pause(randomBetween(0, 3 * grace)).then(() => run.worker(victim.slot, cfg)));
    }
    await run.producer.done;
    const restarted = await Promise.allSettled(restarts);
    await Promise.all(watchers);
    run.check(
      'every killed consumer restarted',
      restarted.every((r) => r.status === 'fulfilled'),
      `${restarted.filter((r) => r.status === 'fulfilled').length}/${restarted.length}`,
    );
    await run.drain(byProfile(profile, 15_000, 60_000));
    const pendingLeft = await run.pendingEmpty(10 * grace);
    await run.stopWorkers();
    const pendingAfterStop = await run.admin.pendingCount(run.key, run.sinkName);

    // Duplicates may only be events a killed consumer had handled (reported) but not acked: still in its PEL at the kill.
    const allowed = new Set<string>();
    for (const k of kills) {
      for (const id of k.pending) if (run.oracle.handled.get(id)?.some((h) => h.pid === k.pid)) allowed.add(id);
      k.handledMs = handledElsewhereAfter(
        run,
        k.pending.filter((id) => run.oracle.handled.get(id)?.some((h) => h.pid !== k.pid)),
        k.pid,
        k.at,
      );
    }
    const s = run.oracle.summary();
    const outside = s.dupIds.filter((id) => !allowed.has(id));
    run.check('killed consumers', kills.length >= byProfile(profile, 2, 8), `${kills.length} kills`);
    run.check(
      'duplicates only for killed in-flight events',
      outside.length === 0,
      `${s.duplicated} duplicates, ${allowed.size} events were in flight in killed consumers, ${outside.length} other duplicates ${outside.slice(0, 5).join(' ')}`,
    );
    const withPending = kills.filter((k) => k.pending.length > 0);
    const worst = Math.max(0, ...withPending.map((k) => k.claimedMs ?? Number.POSITIVE_INFINITY));
    run.check(
      'redelivery within 2 x grace',
      worst <= run.limit(2 * grace),
      `slowest ${ms(worst)} (limit ${ms(run.limit(2 * grace))}), ${withPending.length} kills with pending events, ${withPending.reduce((n, k) => n + k.pending.length, 0)} events`,
    );
    run.check(
      'pending list empty at the end',
      pendingLeft === 0 && pendingAfterStop === 0,
      `${pendingLeft} then ${pendingAfterStop}`,
    );
    const handledWorst = Math.max(0, ...withPending.map((k) => k.handledMs ?? 0));
    run.note(
      `${kills.length} kills; pending at kill: ${kills.map((k) => k.pending.length).join(',')}; slowest handled elsewhere ${ms(handledWorst)}`,
    );
    return `${ms(worst)} max claim of a killed consumer's events (2 x grace = ${ms(2 * grace)})`;
  },
};

// ---------------------------------------------------------------------------

/** SIGSTOP of a consumer for 3 x grace, then SIGCONT. */
export const stopConsumer: ScenarioDef = {
  name: 'sigstop-consumer',
  title: 'SIGSTOP of a consumer for 3 x grace, then SIGCONT',
  limitMs: { short: 30_000, full: 90_000 },
  async body(run, profile) {
    const grace = byProfile(profile, 500, 1000);
    const rate = 200;
    const cfg = run.config({ graceMs: grace, concurrency: 2, workMs: [5, 15] });
    const slots = ['c1', 'c2', 'c3'];
    // Stalls of Redis itself (an fsync on a busy disk) are faults too: the ledger explains duplicates by them.
    const stopStalls = watchRedisStalls(run);
    const [victim] = await Promise.all(slots.map((s) => run.worker(s, cfg)));
    if (!victim) throw new Error('no worker');
    const after = byProfile(profile, 1000, 5000);
    run.producer.start({ rate, total: 1_000_000, maxMs: 60_000, maxInFlight: 20 });
    await warmedUp(run, slots, 10);

    // Stop it while it owns pending events.
    const { stoppedAt, owned: snapshot } = await stopWhileOwning(run, victim);
    if (snapshot.length === 0) throw new Error('the victim never owned pending events');

    // While stopped: watch its membership and pending count, and what it owns:
    // a read it had blocked in before the stop still takes the next batch.
    const owned = new Set(snapshot);
    run.faults.consumer.push({ pid: victim.pid, at: stoppedAt, kind: 'stop', owned });
    const observations: Array<{ at: number; present: boolean; pending: number }> = [];
    let claimedMs: number | undefined;
    const contAt = stoppedAt + 3 * grace;
    for (let i = 0; i < 10_000 && Date.now() < contAt; i++) {
      const consumers = await run.admin.consumers(run.key, run.sinkName);
      const me = consumers.find((c) => c.name === victim.consumer);
      observations.push({ at: Date.now(), present: me !== undefined, pending: me?.pending ?? 0 });
      for (const id of await run.admin.pendingOf(run.key, run.sinkName, victim.consumer)) owned.add(id);
      if (claimedMs === undefined && (me?.pending ?? 0) === 0) claimedMs = Date.now() - stoppedAt;
      await pause(Math.min(40, Math.max(0, contAt - Date.now())));
    }
    victim.signal('SIGCONT');
    const resumedAt = Date.now();
    const removedIdx = observations.findIndex((o) => !o.present);
    const before = removedIdx > 0 ? observations[removedIdx - 1] : undefined;
    const resumed = await waitUntil(() => progressAfter(run, victim.slot, resumedAt) !== undefined, 10_000, 25);
    await pause(after);
    await run.producer.stop();
    await run.drain(byProfile(profile, 15_000, 30_000));
    const pendingLeft = await run.pendingEmpty(10 * grace);
    await run.stopWorkers();
    await stopStalls();

    const handledMs = handledElsewhereAfter(
      run,
      snapshot.filter((id) => run.oracle.handled.get(id)?.some((h) => h.pid !== victim.pid)),
      victim.pid,
      stoppedAt,
    );
    const s = run.oracle.summary();
    const outside = s.dupIds.filter((id) => !owned.has(id));
    run.check(
      'its events go to others within 2 x grace',
      claimedMs !== undefined && claimedMs <= run.limit(2 * grace),
      `${snapshot.length} pending at SIGSTOP, claimed after ${claimedMs === undefined ? 'never' : ms(claimedMs)} (limit ${ms(run.limit(2 * grace))})`,
    );
    run.check(
      'not removed from the group while it owns pending entries',
      removedIdx === -1 || (before !== undefined && before.pending === 0),
      removedIdx === -1
        ? 'never removed while stopped'
        : `removed ${ms((observations[removedIdx]?.at ?? 0) - stoppedAt)} after SIGSTOP, pending ${before?.pending ?? '?'} just before`,
    );
    run.check(
      'it resumes after SIGCONT',
      resumed,
      `first new event ${ms(progressAfter(run, victim.slot, resumedAt) ?? Number.NaN)} after SIGCONT`,
    );
    // Duplicates of the stopped consumer's events are the fault's; any other needs a fault of its own
    // (a stall of Redis, another consumer frozen by a starved host): the ledger's per-copy stamps say which.
    const l = sinkLedger(run.oracle, run.sinkName, run.faults, run.letters, grace);
    const causes = Object.entries(l.duplicateCauses).map(([why, n]) => `${n} ${why}`);
    run.check(
      'duplicates only where a fault took the event (the stop, or another)',
      l.duplicatesWithoutFault === 0,
      `${s.duplicated} duplicates, ${outside.length} of events it did not own; ${l.duplicatesWithoutFault} without a fault${causes.length > 0 ? `; ${causes.join('; ')}` : ''}${l.examples.duplicatesWithoutFault ? ` (e.g. ${l.examples.duplicatesWithoutFault.join('; ')})` : ''}; it owned ${snapshot.length} at SIGSTOP, ${owned.size} in all while stopped`,
    );
    run.check('pending list empty at the end', pendingLeft === 0, `${pendingLeft}`);
    run.note(
      `handled elsewhere after ${handledMs === undefined ? 'n/a' : ms(handledMs)}; ${observations.length} XINFO CONSUMERS polls`,
    );
    return `${claimedMs === undefined ? 'never' : ms(claimedMs)} claim of the stopped consumer's events (2 x grace = ${ms(2 * grace)})`;
  },
};
