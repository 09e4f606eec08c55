/**
 * The demo's side of its consumer processes (`demoWorker.ts`): starts one,
 * follows what it reports, SIGKILLs it, or stops it cleanly.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { RedisTarget } from './connection.js';
import type { FromWorker, ToWorker, TraceSpan } from './demoProtocol.js';
import { CliError } from './errors.js';
import { onExit } from './lifecycle.js';

const WORKER = new URL('./demoWorker.js', import.meta.url);
const START_TIMEOUT_MS = 20_000;
/** How long a consumer that exited may take to deliver the rest of its stderr. */
const STDERR_WAIT_MS = 1000;

/**
 * The line of a crashed Node process's stderr that says why: its error line
 * (`Error: ...`, `TypeError: ...`), else its last line. Not simply the last
 * line: Node ends a crash report with its version (`Node.js v20.20.0`).
 */
export function whyExited(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Node\.js v\d/.test(l));
  return lines.find((l) => /^[A-Za-z]*Error\b/.test(l)) ?? lines.at(-1) ?? '';
}

/** What a consumer process reports, as the demo sees it. */
export interface ConsumerReports {
  /** Events it handled, by ID (redeliveries included). */
  onHandled(ids: readonly string[]): void;
  /** With --trace: spans it recorded (its `process` spans). */
  onSpans?(spans: readonly TraceSpan[]): void;
}

interface Stats {
  handled: number;
  redelivered: number;
}

/** One consumer of the demo sink, running in a child process. */
export class ConsumerProcess {
  readonly label: string;
  readonly pid: number;
  /** Its consumer name in Redis (`XINFO CONSUMERS`). */
  readonly consumerName: string;
  /** Entries Redis counts as pending for it (set by the demo's sampling). */
  pending = 0;
  #killed = false;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #stats: Stats;

  private constructor(
    label: string,
    child: ChildProcess,
    consumerName: string,
    pid: number,
    exited: Promise<void>,
    stats: Stats,
  ) {
    this.label = label;
    this.#stats = stats;
    this.#child = child;
    this.consumerName = consumerName;
    this.pid = pid;
    this.#exited = exited;
  }

  /**
   * Starts a consumer process and waits until its sink is ready; with
   * `trace`, it traces its handler calls and sends its spans back.
   * @throws CliError when it fails to start.
   */
  static async start(
    target: RedisTarget,
    streamName: string,
    label: string,
    reports: ConsumerReports,
    trace = false,
  ): Promise<ConsumerProcess> {
    const child = fork(WORKER, [], {
      env: {
        ...process.env,
        PULSE_DEMO_URL: target.url,
        PULSE_DEMO_CLUSTER: target.cluster ? '1' : '0',
        PULSE_DEMO_STREAM: streamName,
        PULSE_DEMO_LABEL: label,
        PULSE_DEMO_TRACE: trace ? '1' : '0',
      },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const unregister = onExit(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    // 'exit' may come before the last of its stderr is read, and that is the part that says why it failed.
    const stderrRead = new Promise<void>((resolve) => {
      if (!child.stderr) return resolve();
      child.stderr.once('close', resolve);
      setTimeout(resolve, STDERR_WAIT_MS).unref();
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(unregister);
    // Counted from the first message on, before the constructor runs.
    const stats: Stats = { handled: 0, redelivered: 0 };
    const ready = new Promise<{ consumer: string; pid: number }>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new CliError(`${label} did not start within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve(m);
        } else if (m.type === 'failed') {
          clearTimeout(timer);
          reject(new CliError(`${label} failed: ${m.error}`));
        } else if (m.type === 'handled') {
          stats.handled += m.ids.length;
          stats.redelivered = m.redelivered;
          reports.onHandled(m.ids);
        } else if (m.type === 'spans') {
          reports.onSpans?.(m.spans);
        } else if (m.type === 'closed') {
          stats.redelivered = m.redelivered;
        }
      });
      void exited.then(async () => {
        clearTimeout(timer);
        await stderrRead;
        const why = whyExited(stderr);
        reject(new CliError(`${label} exited at start${why ? `: ${why}` : ''}`));
      });
    });
    try {
      const { consumer, pid } = await ready;
      return new ConsumerProcess(label, child, consumer, pid, exited, stats);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** Events it reported handled, redeliveries included. */
  get handled(): number {
    return this.#stats.handled;
  }

  /** Its sink's `counters.redelivered`, as last reported. */
  get redelivered(): number {
    return this.#stats.redelivered;
  }

  /** False once it was killed or it exited. */
  get alive(): boolean {
    return !this.#killed && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** True when the demo killed it. */
  get killed(): boolean {
    return this.#killed;
  }

  /** Kills it with SIGKILL, as a crash would: it acks nothing more, closes nothing. Resolves once it is gone. */
  async kill(): Promise<void> {
    this.#killed = true;
    this.#child.kill('SIGKILL');
    await this.#exited;
  }

  /** Asks it to report and ack what it handled and close its sink; kills it if it has not exited within `ms`. */
  async stop(ms = 5000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    if (this.#child.connected) this.#child.send({ type: 'stop' } satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#exited, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGKILL');
      await this.#exited;
    }
  }
}
