/**
 * Events that disappear from the stream under live consumers (issue 13
 * defects 3, 4, 13, 14, 18 and "Nothing lost silently"): XDEL of unread and
 * of pending entries, a burst far beyond `maxLen`, a TTL stream expiring and
 * coming back, dead letters replayed. Per sink every event ends handled XOR
 * dead-lettered XOR reported lost; readers: delivered + reported lost = added.
 */
import { replayDeadLetters } from '../packages/pulse-streaming/src/index.js';
import { contractChecks, settle, xdel } from './contract.js';
import { pause, waitUntil } from './harness.js';
import { byProfile, ms } from './measure.js';
import type { ScenarioDef } from './run.js';

/** XDEL of entries the group has not read and of entries pending in it, while consumers run. */
export const xdelLive: ScenarioDef = {
  name: 'xdel-unread-pending',
  title: 'XDEL of unread and of pending entries while a sink and a reader consume',
  options: { expectReportedLost: true },
  limitMs: { short: 40_000, full: 120_000 },
  async body(run, profile) {
    const grace = 500;
    // Slower than the producer, so there are always unread entries to delete.
    const cfg = run.config({ graceMs: grace, concurrency: 1, bufferSize: 10, maxPolled: 10, workMs: [10, 20] });
    await Promise.all([
      run.worker('c1', cfg),
      run.worker('c2', { ...cfg, mode: 'subscribe', client: 'node-redis' }),
      run.worker('r1', { ...cfg, mode: 'reader', workMs: [0, 0] }),
    ]);
    const duration = byProfile(profile, 2000, 20_000);
    run.producer.start({ rate: 200, total: 200 * (duration / 1000), maxMs: duration + 10_000, maxInFlight: 10 });
    let deleted = 0;
    let producing = true;
    void run.producer.done.finally(() => {
      producing = false;
    });
    for (let i = 0; i < 1000 && producing; i++) {
      await pause(250);
      deleted += await xdel(run, 3, 2).catch(() => 0);
    }
    await run.producer.done;
    await settle(run, [run.sinkName], byProfile(profile, 15_000, 60_000), 2 * grace);
    await run.stopWorkers();
    await contractChecks(run, { sinks: [run.sinkName], readers: ['r1'], graceMs: grace });
    return `${deleted} entries deleted`;
  },
};

/** One burst of 20 x maxLen adds in one tick, a sink of two consumers and two readers. */
export const burstBeyondMaxLen: ScenarioDef = {
  name: 'burst-beyond-maxlen',
  title: 'bursts of 20 x maxLen adds in one tick, a sink and two readers',
  options: { expectReportedLost: true, maxLen: 50 },
  limitMs: { short: 40_000, full: 120_000 },
  async body(run, profile) {
    const grace = 500;
    const cfg = run.config({ graceMs: grace, concurrency: 4, bufferSize: 20, maxPolled: 20, workMs: [0, 1] });
    await Promise.all([
      run.worker('c1', cfg),
      run.worker('c2', { ...cfg, mode: 'subscribe', client: 'node-redis' }),
      run.worker('r1', { ...cfg, mode: 'reader' }),
      run.worker('r2', { ...cfg, mode: 'reader', client: 'node-redis' }),
    ]);
    const maxLen = run.options.maxLen ?? 50;
    const bursts = byProfile(profile, 1, 3);
    for (let i = 0; i < bursts; i++) {
      await run.producer.burst(20 * maxLen);
      await pause(500);
    }
    await settle(run, [run.sinkName], byProfile(profile, 10_000, 30_000), 2 * grace);
    // Readers count their losses when they read past them: give them the time to catch up.
    await waitUntil(() => ['r1', 'r2'].every((r) => (run.oracle.readers.get(r)?.length ?? 0) > 0), 5000, 50);
    await run.stopWorkers();
    const r = await contractChecks(run, { sinks: [run.sinkName], readers: ['r1', 'r2'], graceMs: grace });
    const l = r.sinks[0];
    return `${bursts} x ${20 * maxLen} adds: ${l?.handled ?? 0} handled, ${(l?.lostById ?? 0) + (l?.lostByCount ?? 0)} reported lost`;
  },
};

/** A TTL stream expiring under a live sink, events added again after, poison events dead-lettered and replayed. */
export const ttlExpiryReplay: ScenarioDef = {
  name: 'ttl-expiry-replay',
  title: 'TTL stream expires under a live sink, events added again, poison events dead-lettered and replayed',
  options: { expectReportedLost: true, ttlMs: 3000 },
  limitMs: { short: 40_000, full: 120_000 },
  async body(run, profile) {
    const grace = 300;
    const ttl = run.options.ttlMs ?? 3000;
    // Slow enough that the first stream expires with events not yet handled.
    const cfg = run.config({
      graceMs: grace,
      concurrency: 1,
      bufferSize: 20,
      maxPolled: 20,
      workMs: [20, 30],
      maxDeliveries: 2,
      poisonName: 'poison',
    });
    await Promise.all([
      run.worker('c1', cfg),
      run.worker('c2', { ...cfg, client: 'node-redis' }),
      run.worker('r1', { ...cfg, mode: 'reader', workMs: [0, 0], bufferSize: 10, maxPolled: 10 }),
    ]);
    // Each phase but the last outlives what the consumers can handle before the key expires (about 80 events a
    // second); the last one is short, so its poison event reaches its dead letter before the key expires again.
    const phases = byProfile(profile, [300, 40], [300, 300, 40]);
    const eventName = (seq: number) => (seq % 50 === 7 ? 'poison' : 'ev');
    const poisons = () => [...run.oracle.published].filter(([, p]) => p.name === 'poison').map(([id]) => id);
    const expiries: number[] = [];
    let before = new Set<string>();
    for (const [i, total] of phases.entries()) {
      const started = Date.now();
      before = new Set(poisons());
      run.producer.start({ rate: 400, total, maxMs: 20_000, maxInFlight: 20, eventName });
      await run.producer.done;
      if (i === phases.length - 1) break;
      const gone = await waitUntil(async () => Number(await run.admin.call(['EXISTS', run.key])) === 0, ttl + 5000, 25);
      expiries.push(Date.now() - started);
      if (!gone) run.note(`phase ${i}: the stream did not expire`);
    }
    // The last phase's poison events reach their dead letter; then the handlers are cured and the letters replayed.
    const deadIds = () => new Set(run.oracle.marks.filter((m) => m.kind === 'dead').map((m) => m.id));
    const lastPoisons = poisons().filter((id) => !before.has(id));
    const poisoned = await waitUntil(() => lastPoisons.every((id) => deadIds().has(id)), 5000, 50);
    if (!poisoned) run.note('the last poison events were not dead-lettered in 5 s');
    await run.deadLetterSources();
    for (const w of run.current().values()) w.send({ t: 'cure' });
    const replayed = await replayDeadLetters(run.producer.stream);
    for (const id of replayed) run.oracle.extra.add(id);
    await settle(run, [run.sinkName], byProfile(profile, 15_000, 60_000), 2 * grace);
    await waitUntil(() => (run.oracle.readers.get('r1')?.length ?? 0) > 0, 3000, 50);
    await run.stopWorkers();
    const pttl = Number(await run.admin.call(['PTTL', run.key]).catch(() => -3));
    const r = await contractChecks(run, { sinks: [run.sinkName], readers: ['r1'], graceMs: grace, lossEstimated: true });
    const l = r.sinks[0];
    run.note(
      `expired after ${expiries.map(ms).join(', ')}; ${replayed.length} dead letters replayed; stream PTTL at the end ${pttl} (-1: no expiry)`,
    );
    return `${l?.handled ?? 0} handled, ${l?.deadLettered ?? 0} dead-lettered, ${(l?.lostById ?? 0) + (l?.lostByCount ?? 0)} reported lost, ${replayed.length} replayed`;
  },
};
