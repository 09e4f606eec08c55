/**
 * One scenario run: a private Redis, an admin connection, a producer, the
 * consumer processes and the oracle, the checks every scenario shares, and a
 * cleanup that stops everything it started by pid.
 */
import { randomBytes } from 'node:crypto';
import { readDeadLetters } from '../packages/pulse-streaming/src/index.js';
import type { RedisServer } from '../test/support/redisServer.js';
import { type WorkerConfig, WorkerProc } from './consumers.js';
import { Admin, startRedis, waitUntil, within } from './harness.js';
import { emptyFaults, type FaultLog, type Letters } from './ledger.js';
import { Oracle, type Summary } from './oracle.js';
import { Producer } from './producer.js';

export type Profile = 'short' | 'full';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  name: string;
  title: string;
  profile: Profile;
  ms: number;
  summary: Summary;
  /** Lost as the scenario counts it (trimming: neither handled nor reported lost). */
  lost: number;
  /** Sum of the sinks' `counters.lost` (trimmed or deleted before they were acked). */
  reportedLost: number;
  /** Events both handled and reported lost by ID (counted twice by handled + reported lost). */
  overlap: number;
  /** Most 'retrying' warnings one process logged in one second. */
  retryMaxPerSec: number;
  recovery: string;
  notes: string[];
  checks: Check[];
  ok: boolean;
}

export interface RunOptions {
  /** Stream `maxLen` for the producer (0: no trimming). */
  maxLen?: number;
  /** Counted lost events are expected (the trimming scenario): skip the "nothing reported lost" check. */
  expectReportedLost?: boolean;
  /** Redis client of the consumer processes. @defaultValue 'ioredis' */
  client?: 'ioredis' | 'node-redis';
  /** Stream TTL of the producer's stream (ms). */
  ttlMs?: number;
}

/** How much the short run stretches time limits (see `Run.limit`). */
export const SHORT_RUN_SLACK = 2;

/** Retries a second per process above which backoff is broken (issue 4). */
export const MAX_RETRIES_PER_SEC = 20;

export class Run {
  readonly name: string;
  readonly oracle = new Oracle();
  readonly streamName: string;
  readonly sinkName = 'chaos';
  readonly key: string;
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  readonly options: RunOptions;
  /** What the table shows as lost when the scenario counts it its own way. */
  lostShown: number | undefined;
  server!: RedisServer;
  admin!: Admin;
  producer!: Producer;
  /** Producers beyond the first (closed with it). */
  readonly producers: Producer[] = [];
  /** Consumer and Redis faults, for the ledger (ledger.ts). */
  readonly faults: FaultLog = emptyFaults();
  /** Every dead letter read so far (a replay deletes them). */
  readonly letters: Letters = new Map();

  constructor(name: string, options: RunOptions = {}) {
    this.name = name;
    this.options = options;
    this.streamName = `chaos-${name}-${randomBytes(3).toString('hex')}`;
    this.key = `pulse:stream:${this.streamName}`;
  }

  async setup(): Promise<void> {
    this.server = await startRedis();
    this.admin = await Admin.connect(this.server.url);
    const stream = this.options.ttlMs === undefined ? {} : { ttlMs: this.options.ttlMs };
    this.producer = await Producer.connect(this.server.url, this.streamName, this.options.maxLen ?? 0, this.oracle, { stream });
    this.phase('setup');
  }

  /** Worker defaults for this run; `over` replaces any of them. */
  config(over: Partial<WorkerConfig>): WorkerConfig {
    return {
      url: this.server.url,
      stream: this.streamName,
      sink: this.sinkName,
      client: this.options.client ?? 'ioredis',
      mode: 'process',
      graceMs: 500,
      blockMs: 250,
      bufferSize: 20,
      maxPolled: 20,
      concurrency: 4,
      workMs: [0, 2],
      ...over,
    };
  }

  /** Starts a worker; the first ones started mark the end of the 'workers' phase. */
  async worker(slot: string, config: WorkerConfig): Promise<WorkerProc> {
    const w = await WorkerProc.start(slot, config, this.oracle);
    if (!this.#started) {
      this.#started = true;
      queueMicrotask(() => this.phase('workers'));
    }
    return w;
  }
  #started = false;

  /** Latest incarnation of each slot. */
  current(): Map<string, WorkerProc> {
    const m = new Map<string, WorkerProc>();
    for (const w of this.oracle.workers) m.set(w.slot, w);
    return m;
  }

  check(name: string, ok: boolean, detail: string): boolean {
    this.checks.push({ name, ok, detail });
    return ok;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  readonly #phases: string[] = [];
  #phaseAt = Date.now();
  /** Marks the end of a phase, for the timing note. */
  phase(name: string): void {
    const now = Date.now();
    this.#phases.push(`${name} ${((now - this.#phaseAt) / 1000).toFixed(1)}`);
    this.#phaseAt = now;
  }

  phases(): string {
    return this.#phases.join(', ');
  }

  /** Waits until every expected event was handled or dead-lettered. */
  /** Waits until every expected event was handled or dead-lettered, and every reader has seen them all. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.phase('run');
    const readers = [...new Set(this.oracle.workers.filter((w) => w.config.mode === 'reader').map((w) => w.slot))];
    const ok = await waitUntil(
      () => this.oracle.allDone() && readers.every((r) => this.oracle.readerReport(r).missing === 0),
      timeoutMs,
      50,
    );
    this.phase('drain');
    if (!ok) this.note(`not drained after ${timeoutMs} ms: ${this.oracle.outstanding()} outstanding`);
    return ok;
  }

  /**
   * A time limit of the contract, stretched in the short run: it runs inside
   * `npm test`, next to other test files on two cores, where a starved
   * process is late for reasons that are not the library's. The full run
   * (`npm run chaos`, alone) applies the limits as they are.
   */
  limit(ms: number): number {
    return ms * this.slack;
  }
  slack = 1;

  /** Waits until nothing is pending in the group. */
  async pendingEmpty(timeoutMs: number): Promise<number> {
    let last = -1;
    await waitUntil(
      async () => {
        last = await this.admin.pendingCount(this.key, this.sinkName);
        return last === 0;
      },
      timeoutMs,
      50,
    );
    return last;
  }

  /** Stops every live worker gracefully (SIGKILL after a timeout). */
  async stopWorkers(): Promise<void> {
    this.phase('until stop');
    await Promise.all(this.oracle.workers.map((w) => w.stop()));
    this.phase('stop');
  }

  async deadLetterSources(): Promise<Array<{ sourceId: string; deliveries: number; sourceSink: string; reason: string }>> {
    const dead = await within(readDeadLetters(this.producer.stream, { count: 10_000 }), 5000, 'readDeadLetters');
    for (const d of dead) {
      this.oracle.dead.add(d.sourceId);
      this.letters.set(d.id, { sourceSink: d.sourceSink, sourceId: d.sourceId });
    }
    return dead;
  }

  reportedLost(): number {
    return this.oracle.workers.reduce((n, w) => n + (w.stats?.counters.lost ?? 0), 0);
  }

  retryMaxPerSec(): number {
    return this.oracle.workers.reduce((n, w) => Math.max(n, w.stats?.retryMaxPerSec ?? 0), 0);
  }

  /** Checks every scenario shares. */
  commonChecks(summary: Summary): void {
    const crashed = this.oracle.workers.filter((w) => w.crashed);
    this.check(
      'no consumer crashed',
      crashed.length === 0,
      crashed.length === 0
        ? `${this.oracle.workers.length} processes`
        : crashed
            .map(
              (w) =>
                `${w.slot}#${w.inc} exit ${w.exit?.code ?? w.exit?.signal} ${w.fatal.join(' ').slice(0, 300)} ${w.stderr.slice(-300)}`,
            )
            .join('; '),
    );
    this.check('unexpected 0', summary.unexpected === 0, `${summary.unexpected} ${summary.unexpectedIds.slice(0, 5).join(' ')}`);
    // Several sinks each deliver every event with deliveryCount 1: their ledgers (ledger.ts) check this per sink.
    const sinks = new Set(this.oracle.workers.filter((w) => w.config.mode !== 'reader').map((w) => w.config.sink));
    this.check(
      'a redelivery says so (deliveryCount > 1)',
      sinks.size > 1 || summary.dcViolations.length === 0,
      `${summary.dcViolations.length} IDs delivered twice with deliveryCount 1 ${summary.dcViolations.slice(0, 5).join(' ')}`,
    );
    const retry = this.retryMaxPerSec();
    const worst = this.oracle.workers.find((w) => w.stats?.retryMaxPerSec === retry && retry > 0);
    const lines = Object.entries(worst?.stats?.warns ?? {})
      .filter(([k]) => k.includes('retrying'))
      .map(([k, n]) => `${n} x '${k.replace(/^warn: /, '')}'`)
      .join(', ');
    this.check(
      `at most ${MAX_RETRIES_PER_SEC} retries a second per process`,
      retry <= MAX_RETRIES_PER_SEC,
      `max ${retry}/s${worst ? ` (${worst.slot}, in total: ${lines})` : ''}`,
    );
    if (!this.options.expectReportedLost) {
      const rl = this.reportedLost();
      // What the sinks logged, so that a failure says which check counted the losses.
      const logged = new Map<string, number>();
      for (const c of this.oracle.lostCounts) logged.set(c.msg, (logged.get(c.msg) ?? 0) + c.count);
      for (const m of this.oracle.marks) if (m.kind === 'lost') logged.set(m.msg, (logged.get(m.msg) ?? 0) + 1);
      const why = [...logged].map(([msg, n]) => `${n} x '${msg}'`).join(', ');
      this.check('nothing reported lost', rl === 0, `counters.lost ${rl}${why ? ` (${why})` : ''}`);
      this.check('lost 0', summary.lost === 0, `${summary.lost} ${summary.lostIds.slice(0, 5).join(' ')}`);
    }
  }

  async cleanup(): Promise<void> {
    await Promise.allSettled(this.oracle.workers.map((w) => w.stop(5000)));
    this.producer?.close();
    for (const p of this.producers) p.close();
    this.admin?.close();
    await this.server?.stop();
  }
}

export interface ScenarioDef {
  name: string;
  title: string;
  options?: RunOptions;
  /** Runs the scenario; resolves to the recovery-time text for the table. */
  body(run: Run, profile: Profile): Promise<string>;
  /** Upper bound of one run, per profile (ms). */
  limitMs: Record<Profile, number>;
}

/** The same scenario with node-redis in the consumer processes. */
export function withNodeRedis(def: ScenarioDef): ScenarioDef {
  return {
    ...def,
    name: `${def.name}/node-redis`,
    title: `${def.title} (node-redis consumers)`,
    options: { ...def.options, client: 'node-redis' },
  };
}

/** Runs one scenario with setup, a time limit, the shared checks and cleanup. Never throws. */
export async function runScenario(def: ScenarioDef, profile: Profile): Promise<ScenarioResult> {
  const run = new Run(def.name, def.options);
  run.slack = profile === 'short' ? SHORT_RUN_SLACK : 1;
  const started = Date.now();
  let recovery = '';
  try {
    await run.setup();
    recovery = await within(def.body(run, profile), def.limitMs[profile], `scenario ${def.name}`);
    try {
      await run.deadLetterSources();
    } catch (err) {
      run.note(`dead letters not read: ${(err as Error).message}`);
    }
  } catch (err) {
    run.check('scenario ran to the end', false, (err as Error).stack?.slice(0, 800) ?? String(err));
  } finally {
    await run.cleanup().catch((err: unknown) => run.note(`cleanup: ${String(err)}`));
    run.phase('cleanup');
    run.note(`phases (s): ${run.phases()}`);
  }
  const summary = run.oracle.summary();
  run.commonChecks(summary);
  return {
    name: def.name,
    title: def.title,
    profile,
    ms: Date.now() - started,
    summary,
    lost: run.lostShown ?? summary.lost,
    reportedLost: run.reportedLost(),
    overlap: [...run.oracle.lostReported.keys()].filter((id) => run.oracle.handled.has(id)).length,
    retryMaxPerSec: run.retryMaxPerSec(),
    recovery,
    notes: run.notes,
    checks: run.checks,
    ok: run.checks.every((c) => c.ok),
  };
}
