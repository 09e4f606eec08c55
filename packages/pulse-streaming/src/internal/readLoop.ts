/**
 * The blocking read loop shared by readers and sinks: it waits until every
 * subscription has room (backpressure), reads a batch on a connection the
 * library owns, retries failures with jittered backoff, and can be
 * interrupted (CLIENT UNBLOCK) when the set of streams changes.
 */
import type { Logger } from '../logger.js';
import type { Fanout } from '../subscription.js';
import { Backoff, sleep } from './backoff.js';
import type { Connection, OwnedConnection } from './driver.js';
import { errorText } from './redisErrors.js';

export interface ReadLoopSpec<T> {
  readonly conn: OwnedConnection;
  /** Connection used to send CLIENT UNBLOCK. */
  readonly control: Connection;
  readonly fanout: Fanout<T>;
  readonly logger: Logger;
  /** The next read on `conn`, or undefined when there is nothing to read yet. */
  nextRead(): ((conn: OwnedConnection) => Promise<unknown>) | undefined;
  /** Handles a read's result. */
  onReply(reply: unknown): Promise<void> | void;
  /** Handles a failure: 'retry' backs off, 'again' retries at once (the caller fixed something), 'stop' ends. */
  onError(err: unknown): Promise<'retry' | 'again' | 'stop'>;
}

export class ReadLoop<T> {
  readonly #spec: ReadLoopSpec<T>;
  readonly #abort = new AbortController();
  #done: Promise<void> | undefined;
  #inFlight: Promise<unknown> | undefined;
  #wake: (() => void) | undefined;

  constructor(spec: ReadLoopSpec<T>) {
    this.#spec = spec;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** How many times its connection connected again after a drop. */
  reconnects(): number {
    return this.#spec.conn.reconnects();
  }

  /** Starts the loop once. */
  start(): void {
    this.#done ??= this.#run();
  }

  /** Makes the loop rebuild its command now: wakes an idle loop, unblocks a blocked read. */
  async interrupt(): Promise<void> {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
    const pending = this.#inFlight;
    if (!pending) return;
    // CLIENT UNBLOCK travels on another connection and can overtake the read
    // it targets; repeat it until that read has returned.
    for (let i = 0; i < 50 && this.#inFlight === pending && !this.#abort.signal.aborted; i++) {
      const id = this.#spec.conn.clientId();
      if (id === undefined) return;
      try {
        await this.#spec.control.send(['CLIENT', 'UNBLOCK', id]);
      } catch (err) {
        this.#spec.logger.debug({ err: errorText(err) }, 'CLIENT UNBLOCK failed');
        return;
      }
      await Promise.race([pending.then(noop, noop), sleep(20)]);
    }
  }

  /** Stops the loop and closes its connection; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#wake?.();
    this.#spec.conn.close();
    await this.#done;
  }

  async #run(): Promise<void> {
    const { conn, fanout, logger } = this.#spec;
    const signal = this.#abort.signal;
    const backoff = new Backoff();
    let againBefore = false;
    while (!signal.aborted) {
      if (!fanout.ready()) {
        await fanout.changed(signal);
        continue;
      }
      const read = this.#spec.nextRead();
      if (!read) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (signal.aborted) resolve();
        });
        continue;
      }
      let reply: unknown;
      try {
        const p = read(conn);
        this.#inFlight = p;
        reply = await p;
      } catch (err) {
        this.#inFlight = undefined;
        if (signal.aborted) break;
        const action = await this.#spec.onError(err);
        if (action === 'stop') break;
        // Retry at once only the first time: a fix that did not work must not spin.
        if (action === 'again' && !againBefore) {
          againBefore = true;
          continue;
        }
        const delay = backoff.next();
        logger.warn({ err: errorText(err), retryInMs: delay, failures: backoff.failures }, 'read failed, retrying');
        await sleep(delay, signal);
        continue;
      } finally {
        this.#inFlight = undefined;
      }
      againBefore = false;
      if (backoff.failures > 0) logger.info({ failures: backoff.failures }, 'read recovered');
      backoff.reset();
      if (signal.aborted) break;
      try {
        await this.#spec.onReply(reply);
      } catch (err) {
        if (signal.aborted) break;
        const delay = backoff.next();
        logger.warn({ err: errorText(err), retryInMs: delay }, 'handling a read failed, retrying');
        await sleep(delay, signal);
      }
    }
  }
}

function noop(): void {}
