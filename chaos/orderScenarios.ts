/**
 * Per-producer order and one entry per add (SEMANTICS.md section 9, issue 13
 * defects 2, 15 and 16): bursts of adds in one tick (they leave as merged
 * script calls of up to 256 events, so 257 makes a lone last add) from two
 * producers (ioredis, node-redis) while Redis restarts and its script cache
 * is flushed; on a cluster (full run), while the stream's slot migrates.
 */
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { RedisCluster } from '../test/support/redisCluster.js';
import { rawCommand } from '../test/support/redisServer.js';
import { contractChecks, restartRedis, settle } from './contract.js';
import { pause } from './harness.js';
import { byProfile } from './measure.js';
import { Producer } from './producer.js';
import type { ScenarioDef } from './run.js';
import { addLedger } from './streamLedger.js';

const SIZES = [257, 513, 100, 300];

export const orderRestartFlush: ScenarioDef = {
  name: 'order-restart-flush',
  title: 'bursts of adds from two producers across a Redis restart and SCRIPT FLUSH',
  limitMs: { short: 40_000, full: 180_000 },
  async body(run, profile) {
    const grace = 500;
    const cfg = run.config({ graceMs: grace, concurrency: 8, workMs: [0, 1], bufferSize: 100, maxPolled: 100 });
    await Promise.all([
      run.worker('c1', cfg),
      run.worker('c2', { ...cfg, mode: 'subscribe', client: 'node-redis' }),
      run.worker('r1', { ...cfg, mode: 'reader', bufferSize: 1000, maxPolled: 1000 }),
    ]);
    const p1 = await Producer.connect(run.server.url, run.streamName, 0, run.oracle, { index: 1, client: 'node-redis' });
    run.producers.push(p1);
    const producers = [run.producer, p1];
    const bursts = byProfile(profile, 8, 40);
    const restarts = new Set(byProfile(profile, [3], [10, 30]));
    const flushes = new Set(byProfile(profile, [5, 7], [5, 15, 20, 25, 35]));
    const inFlight: Promise<void>[] = [];
    let flushed = 0;
    const flushedAt: number[] = [];
    const flush = async () => {
      try {
        await run.admin.call(['SCRIPT', 'FLUSH']);
        flushed++;
        // Not a window the ledger forgives (a flushed cache must cost nothing): for the notes only.
        flushedAt.push(Date.now());
      } catch (err) {
        run.note(`SCRIPT FLUSH failed: ${String(err)}`);
      }
    };
    for (let i = 0; i < bursts; i++) {
      const n = SIZES[i % SIZES.length] ?? 257;
      // Both producers in the same tick; a fault right behind them, while they are in flight.
      for (const p of producers) inFlight.push(p.burst(n));
      if (restarts.has(i)) await restartRedis(run, byProfile(profile, 300, 1000));
      else if (flushes.has(i)) await flush();
      else {
        await pause(200);
        continue;
      }
      // And the first adds after the fault: 257 in one tick are a full script call and a lone add
      // (on a flushed cache the call bounces with NOSCRIPT; the lone add must not overtake its retry).
      for (const p of producers) inFlight.push(p.burst(257));
      await pause(200);
    }
    await Promise.all(inFlight);
    await settle(run, [run.sinkName], byProfile(profile, 20_000, 60_000), 2 * grace);
    await run.stopWorkers();
    const r = await contractChecks(run, { sinks: [run.sinkName], readers: ['r1'], graceMs: grace, scan: true });
    const t0 = run.faults.windows[0]?.from ?? 0;
    run.note(
      `faults, ms after the first restart began: ${run.faults.windows.map((w) => `${w.kind} ${w.from - t0} to ${w.to - t0}`).join(', ')}; script flushes at ${flushedAt.map((t) => t - t0).join(', ')}`,
    );
    run.note(
      `${restarts.size} restarts, ${flushed} script flushes; producers: ${producers.map((p) => `${p.failures} failed adds`).join(', ')}`,
    );
    return `${r.adds.outOfOrder} adds out of order, ${r.adds.doubleStored} stored twice`;
  },
};

/**
 * Cluster, full run only: bursts from an ioredis and a node-redis cluster
 * producer while the stream's slot moves to another master (its script cache
 * flushed first, as on a node that never ran it), four times. It runs
 * a cluster of its own; the run's single Redis is left unused.
 */
export const orderSlotMigration: ScenarioDef = {
  name: 'order-slot-migration',
  title: 'cluster: bursts of adds from two producers while the stream slot migrates (producers only)',
  options: { expectReportedLost: true },
  limitMs: { short: 120_000, full: 180_000 },
  async body(run) {
    const { connectCluster } = await import('../test/support/clusterClients.js');
    const cluster = await RedisCluster.start(3);
    const clients = await Promise.all([connectCluster('ioredis', cluster), connectCluster('node-redis', cluster)]);
    try {
      const name = `${run.streamName}-cluster`;
      const producers = clients.map(
        (c, i) => new Producer(new Stream(name, c.redis as never, { maxLen: 0 }), run.oracle, i, () => {}),
      );
      const key = `pulse:stream:${name}`;
      const slot = slotOf(key);
      // Bursts keep leaving every 30 ms while the slot moves, so some are in flight at every step of a move.
      const inFlight: Promise<void>[] = [];
      let bursting = true;
      const burster = (async () => {
        for (let i = 0; i < 2000 && bursting; i++) {
          for (const p of producers) inFlight.push(p.burst(SIZES[i % SIZES.length] ?? 257));
          await pause(30);
        }
      })();
      let moves = 0;
      for (let i = 0; i < 4; i++) {
        await pause(500);
        const from = await cluster.masterOf(slot);
        const to = (await cluster.masters()).find((m) => m !== from);
        if (!to) continue;
        // The new owner lacks the script, as a node that never ran it or a promoted replica does.
        await rawCommand(to.port, 'SCRIPT FLUSH');
        await cluster.migrateSlot(slot, to);
        moves++;
      }
      await pause(500);
      bursting = false;
      await burster;
      await Promise.all(inFlight);
      run.lostShown = 0;
      const owner = await cluster.masterOf(slot);
      const { Admin } = await import('./harness.js');
      const admin = await Admin.connect(owner.url);
      try {
        const entries: Array<[string, string]> = [];
        let from = '-';
        for (let i = 0; i < 100; i++) {
          const page = (await admin.call(['XRANGE', key, from, '+', 'COUNT', 10_000], 10_000)) as Array<[string, string[]]>;
          for (const [id, fields] of page) entries.push([String(id), String(fields[fields.indexOf('p') + 1])]);
          if (page.length < 10_000) break;
          from = `(${page[page.length - 1]?.[0]}`;
        }
        const adds = addLedger(run.oracle, entries);
        run.check(
          'adds stored in the order each producer issued them, one entry each',
          adds.outOfOrder === 0 && adds.doubleStored === 0,
          `${adds.issued} adds issued (${adds.resolved} resolved, ${adds.failed} failed), ${adds.scanned} entries, ${moves} slot moves: ${adds.outOfOrder} out of order, ${adds.doubleStored} stored twice${adds.examples.length > 0 ? ` (${adds.examples.join('; ')})` : ''}`,
        );
        return `${adds.outOfOrder} out of order, ${adds.doubleStored} stored twice over ${moves} slot moves`;
      } finally {
        admin.close();
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await cluster.stop();
    }
  },
};
