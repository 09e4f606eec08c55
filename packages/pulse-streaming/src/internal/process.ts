/**
 * `sink.process()`, and the handler run it shares with `sink.processBatch()`:
 * bounded concurrency, running events kept in progress so a slow handler is
 * not mistaken for a dead consumer, decode failures dead-lettered before a
 * handler sees them, acks on success and nacks with retry backoff on a throw.
 */
import { type DecodeError, InvalidArgumentError, type PulseError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { ProcessOptions } from '../options.js';
import type { Subscription } from '../subscription.js';
import { monotonicNow } from './clock.js';
import { MAX_DELIVERIES_REASON } from './deadLetterMove.js';
import { traceProcess } from './diagnostics.js';
import { byStream } from './ids.js';
import { ids, LongCalls } from './longCalls.js';
import { type ProcessHost, type RunSettings, runSettings } from './processHost.js';
import { errorText } from './redisErrors.js';
import { retryDelay } from './retry.js';
import { DECODE, type DeadLetterWhy, deadLetterFromRun, decodeReason, MAX_DELIVERIES } from './runDeadLetter.js';
import { linkedAbort } from './signals.js';
import { CLOSE_STEP_MS, within } from './sinkLeave.js';
import { NOT_ANSWERED, untilAborted, untilAnswered } from './untilAnswered.js';

/** What `#untilClosed` resolves to once the sink has been closed a close() step. */
const CLOSED = Symbol('closed');

/**
 * What is said of an event whose handler threw on a `noAck` sink: it was
 * acked as read, so no nack or retry can bring it back.
 */
export const NOACK_FAILED = 'handler failed on a noAck sink: the event is not redelivered';
/** The same for a batch (`processBatch()`). */
export const NOACK_BATCH_FAILED = 'batch handler failed on a noAck sink: its events are not redelivered';

/**
 * One `process()` or `processBatch()` call: its subscription, its handler
 * slots, the events its handlers are running (kept in progress by one timer
 * for all), and the acks still in flight.
 */
export class HandlerRun {
  readonly sub: Subscription<SinkEvent>;
  /** Events a handler is working on: their idle time is reset every third of the grace period. */
  readonly running = new Set<SinkEvent>();
  readonly logger: Logger;
  #active = 0;
  #wake: (() => void) | undefined;
  readonly #keepAlive: NodeJS.Timeout | undefined;
  /** Takes `running` out of what the sink's claims see as held here (heldHere.ts): once stopped, nothing keeps them. */
  readonly #untrack: (() => void) | undefined;
  /** The last round of in-progress touches: a nack waits for it, or a touch could land after the nack and undo it. */
  #touches: Promise<void> = Promise.resolve();
  /** Set once Redis refused a dead letter for good: the run stops taking events and rejects with it. */
  #fatal: PulseError | undefined;
  /** Handler calls running, said when they run long. */
  readonly #long: LongCalls;
  /** ack() flush -> the IDs it carries and its logged outcome, until it settles. */
  readonly #acks = new Map<Promise<void>, { ids: string[]; settled: Promise<void> }>();
  /**
   * Aborts with the run's `signal`: its subscription and what a handler slot waits on (a nack, a
   * dead letter) listen here, one listener on the caller's signal for the run (ten slots failing at
   * once made Node warn of a listener leak on it).
   */
  readonly #stopping: ReturnType<typeof linkedAbort>;

  constructor(
    private readonly host: ProcessHost,
    private readonly settings: RunSettings,
  ) {
    this.logger = host.logger;
    this.#long = new LongCalls(host.logger, host.graceMs);
    this.#stopping = linkedAbort(settings.signal);
    // The subscription listens on the run's signal too: the caller's holds one listener per run.
    this.sub = host.subscribe(settings.signal ? { signal: this.#stopping.signal } : undefined);
    this.#keepAlive = host.noAck
      ? undefined
      : setInterval(
          () => {
            // Those the handler settled itself (processBatch) need no more touches.
            for (const ev of this.running) if (ev.settled) this.running.delete(ev);
            if (this.running.size > 0)
              this.#touches = host.keepInProgress(this.running).then((more) => {
                // A handler that never returns kept this timer, and with it the process, alive for
                // ever after close() and the client's quit, touching nothing.
                if (!more) this.stop();
              });
            this.#long.watch();
          },
          Math.max(5, Math.floor(host.graceMs / 3)),
        );
    // Never what keeps the process alive: a running handler's own work does that; one awaiting
    // a promise that never settles must not hold the process once everything else closed.
    this.#keepAlive?.unref();
    // While handlers run, the events waiting behind them stay with this
    // consumer (SEMANTICS.md section 9): the buffer counts as held however
    // long the handlers take, not only while the loop takes events.
    this.sub.keepHeldWhile(() => this.#active > 0);
    this.#untrack = host.noAck ? undefined : host.trackRunning(this.running, true);
  }

  /** Runs `call`, the handler on `events`, seen by the long-run warning (longCalls.ts) while it runs. */
  handle(events: readonly SinkEvent[], call: () => unknown): Promise<void> {
    return this.#long.run(events, call);
  }

  readonly #done = (): void => {
    this.#active--;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  };

  /**
   * Starts `task` in a slot. A slot is free once the task returns: acks are
   * coalesced by ack() and awaited at the end, so they never hold back the
   * next event. Resolves once a slot is free for the next task.
   */
  async start(task: () => Promise<void>): Promise<void> {
    this.#active++;
    task().then(this.#done, this.#done);
    while (this.#active >= this.settings.concurrency) await new Promise<void>((r) => (this.#wake = r));
  }

  /**
   * Resolves once every task has finished and every ack settled, or, once
   * the sink is closed, at most CLOSE_STEP_MS later (as each step of
   * `close()`): an ack stuck on a stopped Redis must not hang shutdown.
   */
  async finish(): Promise<void> {
    while (this.#active > 0) await new Promise<void>((r) => (this.#wake = r));
    const acks = [...this.#acks.values()];
    if (acks.length === 0) return;
    await this.#untilClosed(Promise.all(acks.map((a) => a.settled)));
    const left = [...this.#acks.values()].flatMap((a) => a.ids);
    if (left.length > 0)
      this.logger.warn(
        { count: left.length, ids: left.slice(0, 10) },
        'sink closed with acks unsettled: their events stay pending and are redelivered after the grace period',
      );
  }

  /**
   * `p`, or CLOSED once the sink has been closed for CLOSE_STEP_MS (as each
   * step of `close()`): what is stuck on a stopped Redis (an ack, a touch, a
   * nack) must not hang shutdown. Rejects when `p` does.
   */
  async #untilClosed<T>(p: Promise<T>): Promise<T | typeof CLOSED> {
    const closed = this.host.closed;
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const bounded = new Promise<typeof CLOSED>((resolve) => {
      onClose = () => {
        timer = setTimeout(() => resolve(CLOSED), CLOSE_STEP_MS);
      };
      if (closed.aborted) onClose();
      else closed.addEventListener('abort', onClose, { once: true });
    });
    try {
      return await Promise.race([p, bounded]);
    } finally {
      clearTimeout(timer);
      if (onClose) closed.removeEventListener('abort', onClose);
    }
  }

  stop(): void {
    clearInterval(this.#keepAlive);
    this.#untrack?.();
    this.#stopping.unlink();
  }

  /**
   * True when `event` may go to a handler: its data decodes (always, on an
   * untyped stream). One that does not is dead-lettered now with a reason
   * that starts with `decode:` (no retries: the same bytes never decode).
   */
  decodes(event: SinkEvent): true | Promise<boolean> {
    const failure = event.decodeFailure();
    // Untyped, or decoded at once: no extra turn of the event loop on the hot path.
    if (failure === undefined) return true;
    return this.#deadLetterIfFailed(event, failure);
  }

  async #deadLetterIfFailed(event: SinkEvent, pending: DecodeError | Promise<DecodeError | undefined>): Promise<boolean> {
    const failure = await pending;
    if (failure === undefined) return true;
    // Not handed out either way; once the run's signal aborts, its end does not wait for an outage.
    await untilAborted(this.#deadLetter(event, decodeReason(failure), DECODE), this.#stopping.signal);
    return false;
  }

  /** Moves `event` to the dead-letter stream now (runDeadLetter.ts); Redis refusing it for good ends the run. */
  #deadLetter(event: SinkEvent, reason: string, why: DeadLetterWhy): Promise<void> {
    return deadLetterFromRun(this.host, event, reason, why, {
      stop: (err) => this.#stop(err),
      // Each attempt bounded once the sink closed, as a nack's: the move goes on the user's client,
      // which close() leaves open, and a stalled Redis must not hang process() after close().
      answered: async (sent) => (await this.#untilClosed(sent.then(() => true))) !== CLOSED,
    });
  }

  /** Ends the run (and the sink, where it allows) with `err`; `drive()` then rejects with it. */
  #stop(err: PulseError): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = err;
    this.host.fail(err);
    // Ends the loop over the subscription; the handlers running finish first.
    void this.sub.return();
  }

  /**
   * Runs `loop` (the run taking events and starting handlers), then waits
   * for the handlers it started and their acks (`finish`), also when it
   * throws: a sink that failed ends its subscriptions with the error, and
   * the run rejected while handlers still ran, their in-progress touches
   * stopped (outside review AD). @throws what `loop` threw, or the error
   * that stopped the run.
   */
  async drive(loop: () => Promise<void>): Promise<void> {
    try {
      await loop();
    } catch (err) {
      await this.finish();
      throw err;
    }
    await this.finish();
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  /** Acks events the handler is done with (one ack call for all), its outcome logged, awaited by `finish()`. */
  ack(events: SinkEvent[]): void {
    const first = events[0];
    if (first === undefined) return;
    const flush = first.acker.ack(...events);
    const known = this.#acks.get(flush);
    if (known) {
      for (const ev of events) known.ids.push(ev.id);
      return;
    }
    const ids = events.map((ev) => ev.id);
    const settled = flush
      .catch((err: unknown) => this.logger.warn({ ids, err: errorText(err) }, 'ack failed: the events will be redelivered'))
      .finally(() => this.#acks.delete(flush));
    this.#acks.set(flush, { ids, settled });
  }

  /** Whether `event` had its last delivery the sink's `maxDeliveries` allows: failed, it is dead-lettered. */
  atLastDelivery(event: SinkEvent): boolean {
    const max = this.host.maxDeliveries;
    return max !== undefined && event.deliveryCount >= max;
  }

  /**
   * Gives back events whose handler threw, each redelivered after the retry
   * delay of its delivery count (one random jitter factor per call); those
   * at their last delivery (`atLastDelivery`) go to the dead-letter stream
   * now, with the reason a claim gives them, `max deliveries reached`.
   */
  async failed(events: readonly SinkEvent[]): Promise<void> {
    // Held until the nack lands, untouched: a claim of ours meanwhile must not hand them out before the delay (heldHere.ts).
    const untrack = this.host.trackRunning(new Set(events));
    try {
      await this.#failed(events);
    } finally {
      untrack();
    }
  }

  async #failed(events: readonly SinkEvent[]): Promise<void> {
    // The touches travel on another connection than the nack: let them land first. Bounded:
    // a touch stuck on a stopped Redis must not hold the nack (a later touch is moot), nor shutdown.
    await this.#untilClosed(within(this.#touches, this.host.graceMs));
    const random = Math.random();
    const byCount = new Map<number, SinkEvent[]>();
    const last: Promise<void>[] = [];
    for (const ev of events) {
      // Its last delivery: a nack would only make it wait out a retry delay (up to maxDelayMs) before
      // the claim that moves it, with no delivery left to wait for.
      if (this.atLastDelivery(ev)) {
        last.push(untilAborted(this.#deadLetter(ev, MAX_DELIVERIES_REASON, MAX_DELIVERIES), this.#stopping.signal));
        continue;
      }
      const group = byCount.get(ev.deliveryCount);
      if (group) group.push(ev);
      else byCount.set(ev.deliveryCount, [ev]);
    }
    for (const [count, group] of byCount) await this.#nack(group, retryDelay(this.settings.retry, count, random));
    await Promise.all(last);
  }

  /**
   * Nacks `group` with `delayMs`, retried with backoff while Redis cannot take
   * it (a dropped connection, a restart): one failed nack would drop the
   * retry delay, and the events come back after the grace period instead.
   * Retried until the sink closes or Redis refuses for good: Redis rolled
   * back under the handler leaves nothing to redeliver its events after the
   * grace period, and only a nack that lands finds them gone (counted lost:
   * outside reviews C and R; a nack given up after a grace period while Redis
   * was down left them uncounted). A late nack makes them due at once, and
   * one that finds them another consumer's leaves them to it.
   */
  async #nack(group: SinkEvent[], delayMs: number): Promise<void> {
    // Stream by stream: a batch's stream destroyed under it (NOGROUP) ended the one nack of all, and
    // the events of its other streams came back after the grace period, not the delay (review AD).
    // Once the run's signal aborts, neither its slot nor its end waits for an outage: the nack goes on
    // until it lands or the sink closes, so a short outage at shutdown keeps the delay (outside review U).
    await Promise.all(
      [...byStream(group).values()].map((events) =>
        untilAborted(this.#nackUntilAnswered(events, delayMs), this.#stopping.signal),
      ),
    );
  }

  #nackUntilAnswered(group: SinkEvent[], delayMs: number): Promise<void> {
    // Held until it lands, also past the run's abort (see `failed`).
    const untrack = this.host.trackRunning(new Set(group));
    return this.#nackRetried(group, delayMs).finally(untrack);
  }

  async #nackRetried(group: SinkEvent[], delayMs: number): Promise<void> {
    const due = monotonicNow() + delayMs;
    const failed = await untilAnswered(
      async () => {
        // What is left of the delay: the events are due when they would have been at the first try.
        const sent = this.host.nack(group, Math.max(0, due - monotonicNow()));
        if ((await this.#untilClosed(sent.then(() => true))) !== CLOSED) return;
        sent.catch(() => {});
        // Not a success: the sink closed (untilAnswered then stops, and says so below).
        throw NOT_ANSWERED;
      },
      { stopping: this.host.closed, logger: this.logger, what: 'nack', fields: { ids: ids(group) } },
    );
    if (failed === undefined) return;
    // Redis lost them with their stream's key (expired, deleted, restarted empty) or in a rollback: counted lost.
    if (failed.why === 'nogroup') await this.host.groupGone(group, 'nacked after their stream or group was gone');
    const why =
      failed.err === NOT_ANSWERED
        ? 'nack not answered after close: the events are redelivered after the grace period, unless Redis lost them in a rollback'
        : failed.why === 'nogroup'
          ? 'nack found its consumer group gone (the events went with their stream, or come again with the group made anew)'
          : failed.why === 'stopped'
            ? 'nack failed as the sink closed: the events are redelivered after the grace period, unless Redis lost them in a rollback'
            : 'nack failed: the events are redelivered after the grace period';
    this.logger.warn({ ids: ids(group), err: errorText(failed.err) }, why);
  }
}

/**
 * Runs `handler` for each event with at most `concurrency` in flight; resolves
 * when `signal` aborts or the sink closes, after in-flight handlers finish.
 */
export async function runProcess(
  host: ProcessHost,
  handler: (event: SinkEvent) => unknown,
  options?: ProcessOptions,
): Promise<void> {
  if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
  const settings = runSettings(options, host.noAck);
  if (settings.signal?.aborted) return;
  const run = new HandlerRun(host, settings);
  const one = async (ev: SinkEvent): Promise<void> => {
    // In progress from the moment it is taken: an asynchronous schema may take a while.
    if (!host.noAck) run.running.add(ev);
    const decodes = run.decodes(ev);
    let ok = true;
    // An asynchronous schema that never answers holds this slot like a handler that never returns: said as one.
    if (decodes !== true) await run.handle([ev], async () => (ok = await decodes));
    if (!ok) {
      run.running.delete(ev);
      return;
    }
    let failure: { err: unknown } | undefined;
    try {
      await run.handle([ev], () => traceProcess(ev, host.name, host.consumerName, handler));
    } catch (err) {
      failure = { err };
    } finally {
      // Out of the in-progress touches before the nack: a touch after it would undo its delay.
      run.running.delete(ev);
    }
    // Acked or nacked by the handler itself (a nack's delay included): its own, as in processBatch().
    const settled = ev.settled;
    if (failure === undefined) return settled ? undefined : run.ack([ev]);
    // The nack is under way before the line is logged: it never depends on logging (the logger is
    // the user's code; the library's wrapper keeps it from throwing, this keeps the order safe too).
    const nacking = settled || host.noAck ? undefined : run.failed([ev]);
    const nacked = host.noAck
      ? NOACK_FAILED
      : run.atLastDelivery(ev)
        ? 'handler failed on its last allowed delivery (maxDeliveries): moving the event to the dead letters'
        : 'handler failed: event nacked';
    const what = settled ? 'handler failed after it settled its event' : nacked;
    run.logger.warn({ id: ev.id, deliveryCount: ev.deliveryCount, err: errorText(failure.err) }, what);
    await nacking;
  };
  try {
    await run.drive(async () => {
      for await (const ev of run.sub) await run.start(() => one(ev));
    });
  } finally {
    run.stop();
  }
}
