/**
 * Consumer child processes (chaos/worker.mjs): forked with their config,
 * reporting each handled event to the oracle over IPC, signalled and stopped
 * by pid.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { within } from './harness.js';

const WORKER_PATH = fileURLToPath(new URL('./worker.mjs', import.meta.url));

/** What a worker is told to do (chaos/worker.mjs reads it from CHAOS_WORKER). */
export interface WorkerConfig {
  url: string;
  client: 'ioredis' | 'node-redis';
  stream: string;
  sink: string;
  /** `process`: `sink.process(handler)`; `subscribe`: a `for await` loop that acks itself; `reader`: a Reader. */
  mode: 'process' | 'subscribe' | 'reader';
  graceMs: number;
  blockMs: number;
  bufferSize: number;
  maxPolled: number;
  concurrency: number;
  maxDeliveries?: number;
  /** Simulated work per event, uniform in [min, max] ms. */
  workMs: [number, number];
  /** Wait between reporting an event and returning from the handler (process mode), uniform in [min, max] ms. */
  ackDelayMs?: [number, number];
  /** Events with this name make the handler throw. */
  poisonName?: string;
  /** The first delivery of events whose sequence number is a multiple of this makes the handler throw. */
  failEvery?: number;
  /** Sample `subscription.size` and RSS (subscribe mode). */
  sample?: boolean;
  /** Events whose sequence number modulo `slowEvery` is `slowPhase` (default 0) take `slowMs` instead of `workMs`. */
  slowEvery?: number;
  slowPhase?: number;
  slowMs?: [number, number];
  /** Subscribe mode: call `event.inProgress()` this often while the work of one event lasts longer. */
  inProgressMs?: number;
  /** Leave every this many events (abort `process()`, break out of the loop) and come back (see pauseScenarios.ts). */
  pauseEvery?: number;
}

export interface WorkerStats {
  /** The last report, sent after the sink closed. */
  final?: boolean;
  consumer: string;
  counters: { delivered: number; redelivered: number; acked: number; deadLettered: number; lost: number; filtered: number };
  rss: number;
  rssBaseline: number;
  rssMax: number;
  sizeMax: number;
  /** Most 'retrying' warn lines in one wall-clock second. */
  retryMaxPerSec: number;
  warns: Record<string, number>;
  /** A reader's own counters, when the library has them (`reader.counters`). */
  readerCounters?: { delivered?: number; lost?: number } | undefined;
  lostIds: string[];
  samples: string[];
}

/** The worker's clock: wall time and a process-local sequence (orders what one process did). */
export interface Stamp {
  ts: number;
  n: number;
}

export type WorkerMessage =
  | { t: 'ready'; consumer: string; rss: number }
  | ({
      t: 'h';
      id: string;
      seq: number;
      dc: number;
      fail?: boolean;
      x?: { en: string; len: number; sha: string };
      /** When the handler (or the loop) got the event. */
      st: number;
      sn: number;
    } & Stamp &
      Partial<CopyLife>)
  /** A gap in the worker's own event loop (frozen, or starved of CPU), sent as it ends. */
  | { t: 'g'; from: number; to: number }
  /** The worker's own client was cut off from Redis (closed until ready again). */
  | { t: 'c'; from: number; to: number }
  /** The library logged a failed command (ack, hold, touch, keep-alive, read...). */
  | { t: 'f'; at: number }
  /** An ack of a copy settled: when, and whether Redis took it. */
  | { t: 'a'; id: string; at: number; ok: boolean }
  | ({ t: 's' } & WorkerStats)
  | { t: 'fatal'; err: string }
  /** A warning that reported events lost by ID, sent as it is logged. */
  | ({ t: 'l'; ids: string[]; msg: string } & Stamp)
  /** A warning that reported a number of events lost, without IDs. */
  | ({ t: 'lc'; count: number; msg: string } & Stamp)
  /** A warning that reported events moved to the dead-letter stream. */
  | ({ t: 'd'; ids: string[]; msg: string } & Stamp);

/**
 * The life of one copy of an event in its worker (sink consumers), stamped by
 * the worker's wrappers of the built library (chaos/worker.mjs): 0 when unknown.
 */
export interface CopyLife {
  /** When the read or claim reply put it in a subscription buffer. */
  rd: number;
  /** When the sink believed it held at that moment (its `heldAt`: before a gap in its event loop, the gap's start). */
  ha: number;
  /** When an ownership hold (`holdOwned`) last began that covered it, before hand-out. */
  lh: number;
  /** When an ownership check before hand-out (`recheck`) last began that covered it. */
  rc: number;
  /** When an in-progress touch for it, that Redis ran, was last sent (before the handler finished). */
  ip: number;
}

/**
 * What a worker reports to: the oracle (chaos/oracle.ts), described here so
 * that the oracle depends on the workers and not both ways.
 */
export interface WorkerObserver {
  readonly workers: WorkerProc[];
  readonly lostReported: Map<string, { slot: string; at: number; msg: string }>;
  readonly lostCounts: Array<{ w: WorkerProc; count: number; ts: number; msg: string }>;
  record(w: WorkerProc, m: Extract<WorkerMessage, { t: 'h' }>): void;
  mark(w: WorkerProc, kind: 'dead' | 'lost', ids: string[], at: Stamp, msg: string): void;
  acked(w: WorkerProc, id: string, at: number, ok: boolean): void;
}

let incarnations = 0;

/** One consumer child process. A slot is a logical consumer; a restart is a new incarnation in the same slot. */
export class WorkerProc {
  readonly slot: string;
  readonly inc: number;
  readonly config: WorkerConfig;
  readonly child: ChildProcess;
  readonly pid: number;
  consumer = '';
  stats: WorkerStats | undefined;
  /** Set when the harness signals or stops it on purpose: any other exit is a crash. */
  expectedExit = false;
  exit: { code: number | null; signal: string | null; at: number } | undefined;
  readonly exited: Promise<void>;
  readonly fatal: string[] = [];
  stderr = '';
  readonly startedAt = Date.now();
  readyAt = 0;
  /** Gaps in its event loop longer than 300 ms (SIGSTOP, a starved host): [from, to]. */
  readonly gaps: Array<[number, number]> = [];
  /** When its own client was cut off from Redis: [from, to]. */
  readonly down: Array<[number, number]> = [];
  /** When the library logged a failed command. */
  readonly failures: number[] = [];
  #ready: Promise<void>;

  private constructor(slot: string, config: WorkerConfig, oracle: WorkerObserver) {
    this.slot = slot;
    this.inc = ++incarnations;
    this.config = config;
    this.child = fork(WORKER_PATH, [], {
      env: { ...process.env, CHAOS_WORKER: JSON.stringify(config) },
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.pid = this.child.pid ?? -1;
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        resolve();
      });
    });
    this.#ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code, signal) =>
        reject(new Error(`worker ${slot} exited before ready (${code ?? signal}): ${this.stderr.slice(-500)}`)),
      );
      this.child.on('message', (raw) => {
        const m = raw as WorkerMessage;
        if (m.t === 'ready') {
          this.consumer = m.consumer;
          this.readyAt = Date.now();
          resolve();
        } else if (m.t === 'h') oracle.record(this, m);
        else if (m.t === 's') this.stats = m;
        else if (m.t === 'l') {
          for (const id of m.ids)
            if (!oracle.lostReported.has(id)) oracle.lostReported.set(id, { slot, at: Date.now(), msg: m.msg });
          oracle.mark(this, 'lost', m.ids, m, m.msg);
        } else if (m.t === 'lc') oracle.lostCounts.push({ w: this, count: m.count, ts: m.ts, msg: m.msg });
        else if (m.t === 'd') oracle.mark(this, 'dead', m.ids, m, m.msg);
        else if (m.t === 'g') this.gaps.push([m.from, m.to]);
        else if (m.t === 'c') this.down.push([m.from, m.to]);
        else if (m.t === 'f') this.failures.push(m.at);
        else if (m.t === 'a') oracle.acked(this, m.id, m.at, m.ok);
        else if (m.t === 'fatal') this.fatal.push(m.err);
      });
    });
    this.#ready.catch(() => {});
  }

  /** Forks a worker and waits until its sink or reader exists. */
  static async start(slot: string, config: WorkerConfig, oracle: WorkerObserver): Promise<WorkerProc> {
    const w = new WorkerProc(slot, config, oracle);
    oracle.workers.push(w);
    try {
      await within(w.#ready, 20_000, `worker ${slot} start`);
    } catch (err) {
      w.expectedExit = true;
      w.child.kill('SIGKILL');
      throw err;
    }
    return w;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** A crash: it exited without being told to, or reported a fatal error. */
  get crashed(): boolean {
    return (this.exit !== undefined && !this.expectedExit) || this.fatal.length > 0;
  }

  send(msg: object): void {
    if (this.alive && this.child.connected) this.child.send(msg);
  }

  /** Sends a real signal to this process (by pid). */
  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    if (sig === 'SIGKILL' || sig === 'SIGTERM') this.expectedExit = true;
    process.kill(this.pid, sig);
  }

  /** kill -9, and wait for the exit. */
  async kill9(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Graceful stop: the worker closes its sink and exits; SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.expectedExit = true;
    try {
      process.kill(this.pid, 'SIGCONT');
    } catch {
      // already gone
    }
    this.send({ t: 'stop' });
    try {
      await within(this.exited, timeoutMs, `worker ${this.slot} stop`);
    } catch {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
