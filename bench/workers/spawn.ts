/** The parent side of a worker process: fork it, wait for its messages, stop it by pid. */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isWorkerMessage, type RunMessage, type Side, type WorkerConfig, type WorkerMessage } from './protocol.js';

type MessageOf<T extends WorkerMessage['type']> = Extract<WorkerMessage, { type: T }>;

interface Waiter {
  readonly type: WorkerMessage['type'];
  readonly resolve: (m: WorkerMessage) => void;
  readonly reject: (e: Error) => void;
}

export class WorkerProcess {
  readonly #proc: ChildProcess;
  readonly #name: string;
  readonly #inbox: WorkerMessage[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #exited: Promise<void>;
  #failure: Error | undefined;
  /** Called with every progress message. */
  onProgress: ((consumed: number) => void) | undefined;

  private constructor(config: WorkerConfig) {
    this.#name = `${config.role} (${config.kind})`;
    const file = fileURLToPath(new URL(`./${config.role}.js`, import.meta.url));
    this.#proc = fork(file, [JSON.stringify(config)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#proc.on('message', (m: unknown) => this.#receive(m));
    this.#exited = new Promise((resolve) => {
      // Not 'close': it never comes when the parent disconnects first (Node 20). Messages
      // still in the channel are handled before a later macrotask, hence setImmediate.
      this.#proc.once('exit', (code, signal) => {
        setImmediate(() => {
          this.#fail(new Error(`${this.#name} exited${code === 0 ? '' : ` with ${signal ?? `code ${code}`}`}`));
          resolve();
        });
      });
    });
    this.#proc.once('error', (err) => this.#fail(err));
  }

  /** Starts a producer or consumer process. */
  static start(config: WorkerConfig): WorkerProcess {
    return new WorkerProcess(config);
  }

  /** Starts a run; see {@link RunMessage}. */
  run(side: Side, stream: string, events: number): void {
    const message: RunMessage = { type: 'run', side, stream, events };
    this.#proc.send(message);
  }

  /** The next message of `type` (one already received counts); rejects if the worker fails or exits first. */
  next<T extends WorkerMessage['type']>(type: T): Promise<MessageOf<T>> {
    const i = this.#inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0] as MessageOf<T>);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ type, resolve: (m) => resolve(m as MessageOf<T>), reject });
    });
  }

  /** Closes the IPC channel, which ends the worker; kills it (by its pid) when it has not exited after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#proc.connected) this.#proc.disconnect();
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  #receive(m: unknown): void {
    if (!isWorkerMessage(m)) return;
    if (m.type === 'error') {
      this.#fail(new Error(`${this.#name} failed: ${m.message}`));
      return;
    }
    if (m.type === 'progress') this.onProgress?.(m.consumed);
    const i = this.#waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) this.#waiters.splice(i, 1)[0]?.resolve(m);
    else if (m.type !== 'progress') this.#inbox.push(m);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const w of this.#waiters.splice(0)) w.reject(this.#failure);
  }
}

/** Starts workers, runs `fn` with them, and stops them all whatever happens. */
export async function withWorkers<T>(
  configs: readonly WorkerConfig[],
  fn: (workers: readonly WorkerProcess[]) => Promise<T>,
): Promise<T> {
  const workers = configs.map((c) => WorkerProcess.start(c));
  try {
    return await fn(workers);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}
