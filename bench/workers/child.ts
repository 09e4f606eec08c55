/** The child side of a worker process: its config, its runs, messages to the parent, a clean exit. */
import { isRunMessage, parseWorkerConfig, type RunMessage, type WorkerConfig, type WorkerMessage } from './protocol.js';

/** Sends a message to the parent; resolves once it is handed to the IPC channel. */
export function tell(message: WorkerMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('no IPC channel'));
    process.send(message, undefined, undefined, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

/** What a worker does: set up once, then one run per `run` message, then close. */
export interface WorkerBody {
  run(run: RunMessage): Promise<void>;
  close(): Promise<void>;
}

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * Serves a worker: parses its config, runs its runs one after the other, and
 * closes it when the parent closes the IPC channel. A failure is reported to
 * the parent and ends the worker.
 */
export function serveWorker(setup: (config: WorkerConfig) => Promise<WorkerBody>): void {
  if (!process.send) throw new Error('a worker must be started by the benchmark (fork with IPC)');
  let body: WorkerBody | undefined;
  let failed = false;
  const fail = async (err: unknown): Promise<void> => {
    if (failed) return;
    failed = true;
    process.exitCode = 1;
    await tell({ type: 'error', message: errorText(err) }).catch(() => {});
    if (process.connected) process.disconnect();
  };
  /** Every step runs after the previous one, and none runs after a failure. */
  let queue: Promise<void> = (async () => {
    body = await setup(parseWorkerConfig(process.argv[2]));
  })().catch(fail);
  process.on('message', (m: unknown) => {
    if (!isRunMessage(m)) return;
    queue = queue.then(() => (failed ? undefined : body?.run(m))).catch(fail);
  });
  process.once('disconnect', () => {
    queue = queue
      .then(() => body?.close())
      .catch((err: unknown) => {
        process.exitCode = 1;
        process.stderr.write(`worker close failed: ${errorText(err)}\n`);
      });
  });
}
