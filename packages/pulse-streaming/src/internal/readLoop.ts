/**
 * The blocking read loop shared by readers and sinks: it waits until every
 * subscription has room (backpressure), reads a batch on a connection the
 * library owns, retries failures with jittered backoff, and can be
 * interrupted (CLIENT UNBLOCK) when the set of streams changes. With a
 * read-ahead budget it also sends the next read while a backlog's reply is
 * still on its way or being handled (see `ReadAhead`).
 */
import { Backoff, sleep } from './backoff.js';
import type { LoopRead, ReadLoopSpec } from './readLoopSpec.js';
import { errorText } from './redisErrors.js';
import { sharedAbort } from './signals.js';
import { unblockRead } from './unblockRead.js';

export type { LoopRead, ReadLoopSpec } from './readLoopSpec.js';

/**
 * Longest `stop()` waits for a reply still out after it closed the
 * connection (the reply is dropped either way: the loop stopped). With Redis
 * answering, the closed connection's read fails at once; with Redis stopped
 * or unreachable, ioredis waits for the socket to close (its
 * `disconnectTimeout`, 2 s), which held a reader's `close()` that long.
 */
const STOP_WAIT_MS = 250;

/**
 * Longest `stop()` waits for non-blocking reads out to be answered and
 * handed on (see `stop`). Redis answers them at once: the wait is for a
 * busy process, and 250 ms dropped some replies in a loaded test run (their
 * events then came back with a delivery count raised, or were lost unsaid
 * by a noAck sink).
 */
const STOP_READS_WAIT_MS = 1000;

/** Reads a loop may have out at once with read-ahead: one handled, one on its way. */
const MAX_OUT = 2;

type Settled = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/** A read sent and not handled yet. */
interface Out {
  readonly reply: Promise<Settled>;
  /** Sent behind another read of this loop. */
  readonly ahead: boolean;
  readonly most: number;
  readonly pipelined: boolean;
  readonly blocks: boolean;
  readonly untilFull: boolean;
}

/** What the wait for the head read's reply resolves to when a subscriber took events meanwhile. */
const ROOM = Symbol('room');

export class ReadLoop<T> {
  readonly #spec: ReadLoopSpec<T>;
  readonly #abort = sharedAbort();
  #done: Promise<void> | undefined;
  #inFlight: Promise<unknown> | undefined;
  /** Calls of `interrupt()` so far. */
  #interrupts = 0;
  /** The read out was ended because a buffer filled (see `pauseAfterFullMs`). */
  #endedByFull = false;
  #wake: (() => void) | undefined;
  /** Set by `stop()`: no read is sent any more. */
  #stopping = false;
  /** Called once the loop is done with the reply it waited for (handled, failed, or the loop ended). */
  #replyDone: (() => void) | undefined;
  /** Reads sent and not handled yet, oldest first (more than one only with read-ahead). */
  readonly #out: Out[] = [];
  /** Resolves when a subscriber took events (kept until it does: one listener, not one per read). */
  #roomFreed: Promise<typeof ROOM> | undefined;

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

  /** Cluster: where the read in flight blocks, while one does (see `OwnedConnection.readNode`). */
  blockedOn(): { readonly node: string; readonly key: string } | undefined {
    const head = this.#out[0];
    return head?.blocks && this.#inFlight === head.reply ? this.#spec.conn.readNode() : undefined;
  }

  /** Starts the loop once. */
  start(): void {
    this.#done ??= this.#run();
  }

  /** Makes the loop rebuild its command now: wakes an idle loop, unblocks a blocked read. */
  async interrupt(): Promise<void> {
    this.#interrupts++;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
    const head = this.#out[0];
    if (head?.blocks && this.#inFlight === head.reply) await this.#unblock(head.reply);
  }

  /** Ends the blocked read `pending` (see {@link unblockRead}) while it is the one in flight. */
  #unblock(pending: Promise<unknown>): Promise<void> {
    return unblockRead(
      this.#spec.conn,
      this.#spec.control,
      this.#spec.logger,
      this.#abort.signal,
      pending,
      () => this.#inFlight === pending,
    );
  }

  /**
   * Stops the loop and closes its connection; resolves when the loop has
   * ended. A blocked read is ended first (CLIENT UNBLOCK) and its reply
   * handled, within STOP_WAIT_MS: Redis may serve it as the connection
   * closes (ioredis ends it gracefully), and its events were then left
   * pending unseen, to come to another instance a grace period later with
   * their delivery count raised (outside review V). Non-blocking reads out
   * are waited for and handled the same way, within STOP_READS_WAIT_MS.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    const head = this.#out[0];
    if (this.#done && head && !this.#abort.signal.aborted) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, head.blocks ? STOP_WAIT_MS : STOP_READS_WAIT_MS);
      });
      if (head.blocks && this.#inFlight === head.reply) {
        const handled = new Promise<void>((resolve) => {
          this.#replyDone = resolve;
        });
        await Promise.race([this.#unblock(head.reply).then(() => handled), late]);
      } else if (!head.blocks) {
        // Checked reads out, and those sent ahead behind them: Redis serves them at once, and
        // their replies are handled before the connection closes (the loop sends nothing more
        // while stopping, and ends once they are). Dropped, their events stayed pending unseen:
        // a noAck sink lost them unsaid, and with maxDeliveries 1 they were dead-lettered unseen
        // (outside review AG).
        await Promise.race([this.#done, late]);
      }
      clearTimeout(timer);
    }
    this.#abort.abort();
    this.#wake?.();
    this.#spec.conn.close();
    await this.#done;
  }

  async #run(): Promise<void> {
    try {
      await this.#loop();
    } finally {
      // Replies never handled (the loop stopped): their entries are not coming.
      for (const out of this.#out.splice(0)) this.#release(out);
      this.#replyDone?.();
    }
  }

  async #loop(): Promise<void> {
    const { fanout, logger } = this.#spec;
    const signal = this.#abort.signal;
    const backoff = new Backoff();
    let againBefore = false;
    while (!signal.aborted) {
      // Stopping: the reply `stop()` waited for is handled, nothing more is read.
      this.#replyDone?.();
      this.#replyDone = undefined;
      if (this.#out.length === 0) {
        if (this.#stopping) break;
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
        this.#send(read);
      }
      const settled = await this.#headReply();
      const head = this.#out.shift() as Out;
      this.#release(head);
      if (!settled.ok) {
        if (signal.aborted) break;
        const action = await this.#spec.onError(settled.error);
        if (action === 'stop') break;
        // Retry at once only the first time: a fix that did not work must not spin.
        if (action === 'again' && !againBefore) {
          againBefore = true;
          continue;
        }
        const delay = backoff.next();
        logger.warn({ err: errorText(settled.error), retryInMs: delay, failures: backoff.failures }, 'read failed, retrying');
        await sleep(delay, signal);
        continue;
      }
      againBefore = false;
      if (signal.aborted) break;
      try {
        await this.#spec.onReply(settled.value);
        // Recovered once what the read brought is handled too: a reply that always fails to be
        // handled (a group that cannot be recreated) must back off, not retry at the first step.
        if (backoff.failures > 0) logger.info({ failures: backoff.failures }, 'read recovered');
        backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        // What retrying cannot fix (NOPERM recreating the group) ends the subscriptions, as for a read.
        if ((await this.#spec.onError(err)) === 'stop') break;
        const delay = backoff.next();
        logger.warn({ err: errorText(err), retryInMs: delay, failures: backoff.failures }, 'handling a read failed, retrying');
        await sleep(delay, signal);
      }
      if (this.#endedByFull) {
        this.#endedByFull = false;
        await this.#pause(this.#spec.pauseAfterFullMs ?? 0);
      }
    }
  }

  /** Waits `ms`, or until every subscription's buffer is empty, `interrupt()` or `stop()`. */
  async #pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    const { fanout } = this.#spec;
    const done = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, ms);
      if (this.#abort.signal.aborted) resolve();
      // Drained: what waits in Redis is read now, not after the rest of the pause.
      void (async () => {
        while (!done.signal.aborted && !fanout.drained()) await fanout.changed(done.signal);
        resolve();
      })();
    });
    done.abort();
    clearTimeout(timer);
    this.#wake = undefined;
  }

  /**
   * Waits for the oldest read's reply. Meanwhile, with read-ahead, the next
   * read goes out as soon as the budget allows: now, or once a subscriber
   * took events from a full buffer.
   */
  async #headReply(): Promise<Settled> {
    const head = this.#out[0] as Out;
    this.#inFlight = head.reply;
    const stopWatching = head.untilFull
      ? this.#spec.fanout.onFull(() => {
          this.#endedByFull = true;
          void this.#unblock(head.reply);
        })
      : undefined;
    // One for the head's whole wait: a new one each time room was made (a subscriber took events)
    // left a listener on the loop's signal per turn until the reply came (Node warned of a leak
    // past 10 on a cluster's sink).
    let reply: Promise<Settled> | undefined;
    try {
      for (;;) {
        this.#readAhead();
        reply ??= this.#orStopped(head.reply);
        if (!this.#spec.readAhead || !head.pipelined || this.#abort.signal.aborted) return await reply;
        const r = await Promise.race([reply, this.#room()]);
        if (r !== ROOM) return r;
      }
    } finally {
      stopWatching?.();
      this.#inFlight = undefined;
    }
  }

  /**
   * `reply`, or a failure once the loop has been stopped for STOP_WAIT_MS
   * with the reply still out. Its own listener, removed when the reply
   * comes: a promise shared by every read (settled only at stop) kept each
   * read's reply, events and all, reachable from its reactions until the
   * loop stopped, so a long-lived sink or reader held everything it ever read.
   */
  #orStopped(reply: Promise<Settled>): Promise<Settled> {
    const signal = this.#abort.signal;
    return new Promise<Settled>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const onStop = (): void => {
        timer = setTimeout(() => resolve({ ok: false, error: new Error('read loop stopped') }), STOP_WAIT_MS).unref();
      };
      if (signal.aborted) onStop();
      else signal.addEventListener('abort', onStop, { once: true });
      const settle = (r: Settled): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onStop);
        resolve(r);
      };
      reply.then(settle, (error: unknown) => settle({ ok: false, error }));
    });
  }

  #room(): Promise<typeof ROOM> {
    this.#roomFreed ??= this.#spec.fanout.changed(this.#abort.signal).then(() => {
      this.#roomFreed = undefined;
      return ROOM;
    });
    return this.#roomFreed;
  }

  /** Sends reads behind those out while every one is pipelined and the budget has room. */
  #readAhead(): void {
    const budget = this.#spec.readAhead;
    const { fanout } = this.#spec;
    if (!budget) return;
    while (this.#out.length > 0 && this.#out.length < MAX_OUT && !this.#abort.signal.aborted && !this.#stopping) {
      if (!this.#out.every((o) => o.pipelined) || !fanout.ready()) return;
      const room = fanout.room(budget.limit) - budget.inFlight;
      if (room <= 0) return;
      const read = this.#spec.nextRead(room);
      if (!read?.pipelined || (read.most ?? 0) > room) return;
      this.#send(read);
    }
  }

  #send(read: LoopRead): void {
    const most = read.most ?? 0;
    let sent: Promise<unknown>;
    try {
      const at = this.#interrupts;
      sent = read.send(this.#spec.conn, () => this.#interrupts !== at);
    } catch (error) {
      sent = Promise.reject(error);
    }
    const reply = sent.then(
      (value): Settled => ({ ok: true, value }),
      (error: unknown): Settled => ({ ok: false, error }),
    );
    const ahead = this.#out.length > 0;
    const budget = this.#spec.readAhead;
    if (budget) {
      budget.inFlight += most;
      if (ahead) budget.ahead += most;
    }
    this.#out.push({
      reply,
      most,
      pipelined: read.pipelined === true,
      ahead,
      blocks: read.blocks !== false,
      untilFull: read.untilFull === true,
    });
  }

  /** The read's entries are no longer on their way (handed to `onReply`, or never coming). */
  #release(out: Out): void {
    const budget = this.#spec.readAhead;
    if (!budget) return;
    budget.inFlight -= out.most;
    if (out.ahead) budget.ahead -= out.most;
  }
}
