/**
 * The mixed-fault soak (`npm run chaos -- --soak --minutes N`): for N minutes,
 * faults at random (kill -9 and SIGSTOP/SIGCONT of consumers, SIGSTOP and
 * restarts of Redis with AOF always, CLIENT KILL, SCRIPT FLUSH, XDEL of a few
 * entries) under two producers (ioredis, node-redis, steady adds and bursts),
 * one sink of four consumers (both clients, `process()` and `for await`) and a
 * reader; then the ledger over every event (ledger.ts) as a table of every
 * invariant. Bounded in time and count, loopback only, stops by itself.
 */

import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerConfig, WorkerProc } from './consumers.js';
import {
  contractChecks,
  freezeConsumer,
  killConsumer,
  redisWindow,
  restartRedis,
  settle,
  sinkDone,
  watchRedisStalls,
  xdel,
} from './contract.js';
import { pause, randomBetween, waitUntil } from './harness.js';
import { SINK_INVARIANTS } from './ledger.js';
import { Producer } from './producer.js';
import { Run } from './run.js';

export interface SoakOptions {
  minutes: number;
  /** Adds per second per producer. @defaultValue 300 */
  rate?: number;
}

export interface SoakResult {
  /** The summary table and the details, as Markdown. */
  text: string;
  /** Invariants that must be 0 and are not, and failed checks. */
  failed: string[];
}

type Fault = 'kill' | 'freeze' | 'redis-pause' | 'redis-restart' | 'client-kill' | 'script-flush' | 'xdel';
const MENU: Array<[Fault, number]> = [
  ['kill', 2],
  ['freeze', 2],
  ['redis-pause', 1],
  ['redis-restart', 1],
  ['client-kill', 2],
  ['script-flush', 2],
  ['xdel', 2],
];

function pick(): Fault {
  const total = MENU.reduce((n, [, w]) => n + w, 0);
  let r = Math.random() * total;
  for (const [f, w] of MENU) {
    r -= w;
    if (r < 0) return f;
  }
  return 'xdel';
}

/**
 * Writes, for every event handled more than once or redelivered, each copy's
 * stamps and acks, with the faults and the workers' event-loop gaps, to
 * `$TMPDIR/pulse-chaos-soak-data.json`: what a duplicate can be studied from
 * after the run.
 */
function dumpForAnalysis(run: Run): void {
  const o = run.oracle;
  const byId = new Map<string, typeof o.deliveries>();
  for (const d of o.deliveries) byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
  const marked = new Set(o.marks.map((m) => m.id));
  const copies = [...byId].filter(([id, l]) => l.length > 1 || l.some((d) => d.dc > 1) || marked.has(id));
  const ids = new Set(copies.map(([id]) => id));
  const data = {
    faults: {
      consumer: run.faults.consumer.map((f) => ({ ...f, owned: [...f.owned].filter((id) => ids.has(id)) })),
      windows: run.faults.windows,
    },
    workers: o.workers.map((w) => ({
      slot: w.slot,
      inc: w.inc,
      pid: w.pid,
      mode: w.config.mode,
      client: w.config.client,
      consumer: w.consumer,
      startedAt: w.startedAt,
      exit: w.exit,
      gaps: w.gaps,
      down: w.down,
      failures: w.failures,
    })),
    copies: copies.map(([id, list]) => ({
      id,
      copies: list.map((d) => ({ ...d, ack: o.acks.get(`${d.pid}:${d.id}`) })),
      marks: o.marks.filter((m) => m.id === id).map((m) => ({ kind: m.kind, pid: m.w.pid, ts: m.ts, msg: m.msg })),
    })),
  };
  try {
    writeFileSync(join(tmpdir(), 'pulse-chaos-soak-data.json'), JSON.stringify(data));
  } catch (err) {
    run.note(`analysis data not written: ${String(err)}`);
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const minutes = Math.min(Math.max(o.minutes, 0.5), 120);
  const rate = Math.min(Math.max(o.rate ?? 300, 10), 2000);
  const grace = 1000;
  const run = new Run('soak', { expectReportedLost: true });
  const started = Date.now();
  const counts = new Map<string, number>();
  const failed: string[] = [];
  let out = '';
  try {
    await run.setup();
    const base = run.config({
      graceMs: grace,
      concurrency: 4,
      bufferSize: 50,
      maxPolled: 50,
      workMs: [0, 3],
      ackDelayMs: [0, 5],
      maxDeliveries: 4,
      poisonName: 'poison',
      slowEvery: 997,
      slowMs: [2 * grace, 3 * grace],
      inProgressMs: grace / 3,
    });
    const configs: Record<string, WorkerConfig> = {
      c1: base,
      c2: { ...base, client: 'node-redis' },
      c3: { ...base, mode: 'subscribe' },
      c4: { ...base, mode: 'subscribe', client: 'node-redis' },
    };
    const stallWatch = watchRedisStalls(run);
    await Promise.all(Object.entries(configs).map(([slot, cfg]) => run.worker(slot, cfg)));
    await run.worker('r1', { ...base, mode: 'reader', bufferSize: 1000, maxPolled: 500, workMs: [0, 0] });
    const p1 = await Producer.connect(run.server.url, run.streamName, 0, run.oracle, { index: 1, client: 'node-redis' });
    run.producers.push(p1);
    const producers = [run.producer, p1];
    const ms = minutes * 60_000;
    const eventName = (seq: number) => (seq % 5000 === 4999 ? 'poison' : 'ev');
    for (const p of producers) p.start({ rate, total: Math.ceil((rate * ms) / 1000), maxMs: ms, maxInFlight: 50, eventName });

    const restarts: Promise<unknown>[] = [];
    const bursts: Promise<void>[] = [];
    const deadline = started + ms;
    for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
      await pause(randomBetween(1000, 4000));
      if (Date.now() >= deadline) break;
      if (i % 7 === 3) for (const p of producers) bursts.push(p.burst(257, eventName));
      const fault = pick();
      const consumers = [...run.current().values()].filter((w) => w.config.mode !== 'reader' && w.alive && w.readyAt > 0);
      const victim = consumers[Math.floor(Math.random() * consumers.length)] as WorkerProc | undefined;
      try {
        if (fault === 'kill' && victim && consumers.length > 1) {
          await killConsumer(run, victim);
          const cfg = configs[victim.slot] as WorkerConfig;
          restarts.push(pause(randomBetween(0, 3 * grace)).then(() => run.worker(victim.slot, cfg)));
        } else if (fault === 'freeze' && victim) {
          await freezeConsumer(run, victim, randomBetween(1, 3) * grace);
        } else if (fault === 'redis-pause') {
          await redisWindow(run, 'redis-pause', async () => {
            run.server.pause();
            await pause(randomBetween(500, 2000));
            run.server.resume();
          });
        } else if (fault === 'redis-restart') {
          await restartRedis(run, randomBetween(200, 1500));
        } else if (fault === 'client-kill') {
          await redisWindow(run, 'client-kill', async () => {
            if (Math.random() < 0.3) await run.admin.call(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
            else
              for (const c of await run.admin.clients())
                if (c.name.startsWith('pulse:')) await run.admin.call(['CLIENT', 'KILL', 'ID', c.id]).catch(() => 0);
          });
        } else if (fault === 'script-flush') {
          await run.admin.call(['SCRIPT', 'FLUSH']);
        } else if (fault === 'xdel') {
          await xdel(run, 2, 1);
        } else continue;
        counts.set(fault, (counts.get(fault) ?? 0) + 1);
      } catch (err) {
        counts.set(`${fault} (failed)`, (counts.get(`${fault} (failed)`) ?? 0) + 1);
        run.note(`${fault}: ${(err as Error).message}`);
      }
    }
    await Promise.all(producers.map((p) => p.stop()));
    await Promise.all(bursts);
    const restarted = await Promise.allSettled(restarts);
    run.check(
      'every killed consumer restarted',
      restarted.every((r) => r.status === 'fulfilled'),
      `${restarted.filter((r) => r.status === 'fulfilled').length}/${restarted.length}`,
    );
    // On a slow host the sink may end the run far behind: wait while it still makes progress (what
    // is still in the stream is not lost), then settle as the scenarios do.
    const activity = () => run.oracle.deliveries.length + run.oracle.marks.length + run.oracle.lostCounts.length;
    const drainFrom = Date.now();
    const behind = run.oracle.expected().length - new Set(run.oracle.deliveries.map((d) => d.id)).size;
    let seen = -1;
    let seenAt = Date.now();
    while (Date.now() - drainFrom < 20 * 60_000 && !sinkDone(run, run.sinkName)) {
      if (activity() !== seen) [seen, seenAt] = [activity(), Date.now()];
      else if (Date.now() - seenAt > 60_000) break;
      await pause(2000);
    }
    run.note(
      `the sink was about ${behind} events behind when the producers stopped; caught up in ${((Date.now() - drainFrom) / 1000).toFixed(0)} s`,
    );
    await settle(run, [run.sinkName], 120_000, 3 * grace);
    await waitUntil(() => (run.oracle.readers.get('r1')?.length ?? 0) >= run.oracle.expected().length, 30_000, 500);
    const pendingLeft = await run.pendingEmpty(5 * grace);
    await run.stopWorkers();
    await stallWatch();
    const stalls = run.faults.windows.filter((w) => w.kind.startsWith('redis-stall'));
    counts.set('redis-stall (not injected)', stalls.length);
    const r = await contractChecks(run, { sinks: [run.sinkName], readers: ['r1'], graceMs: grace, scan: true });
    run.commonChecks(run.oracle.summary());

    dumpForAnalysis(run);
    const l = r.sinks[0];
    const rd = r.readers[0];
    const rows: Array<[string, number | string, boolean]> = [];
    if (l) for (const [k, what] of SINK_INVARIANTS) rows.push([what, Number(l[k]), true]);
    if (rd) {
      rows.push(['reader: delivered + reported lost - added', rd.diff, true]);
      rows.push(['reader: delivered twice', rd.repeated, true]);
      rows.push(['reader: out of order', rd.outOfOrder, true]);
    }
    rows.push(['adds stored out of order', r.adds.outOfOrder, true]);
    rows.push(['adds stored twice', r.adds.doubleStored, true]);
    const crashed = run.oracle.workers.filter((w) => w.crashed).length;
    rows.push(['consumer processes crashed', crashed, true]);
    rows.push(['pending at the end', pendingLeft, false]);
    for (const row of rows) if (row[2] && row[1] !== 0) failed.push(`${row[0]}: ${row[1]}`);
    for (const c of run.checks) if (!c.ok) failed.push(`${c.name}: ${c.detail}`);

    const lines = [
      `## Soak: ${minutes} min, ${rate} adds/s per producer, ${((Date.now() - started) / 60_000).toFixed(1)} min in all`,
      '',
      `Events: ${run.oracle.expected().length} added by 2 producers (${r.adds.issued} adds issued, ${r.adds.failed} failed and retried);`,
      `sink: ${l?.handled} handled, ${l?.deadLettered} dead-lettered, ${l?.lostById} reported lost by ID + ${l?.lostByCount} by count,`,
      `${l?.duplicates} duplicates (${l?.faultExplained} events in two states explained by a fault); reader: ${rd?.delivered} delivered, ${rd?.lost ?? 'no counters'} lost.`,
      `Duplicates by the fault that explains them: ${
        Object.entries(l?.duplicateCauses ?? {})
          .map(([why, n]) => `${n} ${why}`)
          .join('; ') || 'none'
      }; ${l?.duplicatesWithoutFault ?? 0} without a fault.`,
      `Faults: ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}; ${run.oracle.workers.length} consumer processes.`,
      '',
      '| invariant | value | must be 0 |',
      '|---|--:|---|',
      ...rows.map(([what, v, must]) => `| ${what} | ${v} | ${must ? (v === 0 ? 'yes: ok' : 'yes: **FAIL**') : 'no'} |`),
      '',
      ...run.checks.map((c) => `- ${c.ok ? 'ok' : '**FAIL**'} ${c.name}: ${c.detail}`),
      ...run.notes.map((n) => `- note: ${n}`),
    ];
    out = lines.join('\n');
  } catch (err) {
    failed.push(`soak did not run to the end: ${(err as Error).stack ?? String(err)}`);
    out = `${out}\nsoak did not run to the end: ${String(err)}`;
  } finally {
    await run.cleanup().catch(() => {});
  }
  return { text: out, failed };
}
