/**
 * `sink.processBatch()`: hands the handler up to `maxBatch` events at a
 * time, waiting at most `maxWaitMs` after a batch's first event for more.
 * The handler may settle some events itself (ack or nack them); on success
 * the rest are acked with one call, on a throw they are nacked with the
 * retry delay. Everything else (slots, in-progress touches, decode failures,
 * retries) is the handler run `process()` uses.
 */
import { InvalidArgumentError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import type { ProcessBatchOptions } from '../options.js';
import type { Subscription } from '../subscription.js';
import { traceProcessBatch } from './diagnostics.js';
import { ids } from './longCalls.js';
import { HandlerRun, NOACK_BATCH_FAILED } from './process.js';
import { type ProcessHost, runSettings } from './processHost.js';
import { errorText } from './redisErrors.js';
import { checkInt, MAX_TIMER_MS } from './validate.js';

const TIMEOUT = Symbol('timeout');

/**
 * The one place a batch handler is called: inside a `process <stream>` batch
 * span when tracing is registered (diagnostics.ts), else directly.
 */
export async function callBatchHandler(
  host: ProcessHost,
  handler: (events: SinkEvent[]) => unknown,
  events: SinkEvent[],
): Promise<void> {
  await traceProcessBatch(events, host.name, host.consumerName, handler);
}

/**
 * Takes batches off a subscription, never losing the event a timed-out wait
 * was for. Every event it takes is passed to `taken` the moment the
 * subscription hands it over: once off the subscription's buffer no hold of
 * the sink covers it, so the caller must keep it in progress from then on
 * (while the batch is gathered, decoded or waits for a slot), or it is
 * claimed again after the grace period and handled twice.
 */
class BatchSource {
  /** A `next()` a timeout won the race against: its event goes into the next batch. */
  #pending: Promise<IteratorResult<SinkEvent>> | undefined;

  constructor(
    private readonly sub: Subscription<SinkEvent>,
    private readonly taken: (ev: SinkEvent) => void,
  ) {}

  /** The subscription's next event, reported taken as soon as it resolves (even if a timeout won the race for it). */
  #next(): Promise<IteratorResult<SinkEvent>> {
    return this.sub.next().then((r) => {
      if (!r.done) this.taken(r.value);
      return r;
    });
  }

  /**
   * The next batch: its first event (waiting as long as it takes), then
   * every event that arrives within `waitMs` of it, up to `max`. Undefined
   * once the subscription ended with nothing taken. Every take after the
   * first is bounded by the batch's deadline, a buffered one too: a stale
   * buffer makes the subscription recheck ownership, and once the events no
   * longer ours are dropped it waits like an empty one (unbounded, the
   * events already taken would stay in progress, never handled nor
   * redelivered, until something new arrives).
   */
  async next(max: number, waitMs: number): Promise<SinkEvent[] | undefined> {
    const first = await this.#take();
    if (first === undefined) return undefined;
    const batch = [first];
    if (max <= 1) return batch;
    const deadline = performance.now() + waitMs;
    // One timer per batch, not one per take: buffered takes are the common case.
    let timer: NodeJS.Timeout | undefined;
    let over = false;
    const expired = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => {
        over = true;
        resolve(TIMEOUT);
      }, waitMs);
    });
    try {
      while (batch.length < max && !over) {
        // Buffered events come at once (after an ownership check, if their hold lapsed); otherwise wait only while time is left.
        if ((this.#pending !== undefined || this.sub.size === 0) && performance.now() >= deadline) break;
        const r = await this.#takeBefore(expired);
        if (r === TIMEOUT || r === undefined) break;
        batch.push(r);
      }
    } finally {
      clearTimeout(timer);
    }
    return batch;
  }

  async #take(): Promise<SinkEvent | undefined> {
    const p = this.#pending ?? this.#next();
    this.#pending = undefined;
    const r = await p;
    return r.done ? undefined : r.value;
  }

  /**
   * The next event, or TIMEOUT once `expired` settles first. The take stays
   * pending then (its event is reported taken when it comes and opens the
   * next batch): dropping it would lose that event.
   */
  async #takeBefore(expired: Promise<typeof TIMEOUT>): Promise<SinkEvent | undefined | typeof TIMEOUT> {
    const p = this.#pending ?? this.#next();
    this.#pending = p;
    const r = await Promise.race([p, expired]);
    if (r === TIMEOUT) return TIMEOUT;
    this.#pending = undefined;
    return r.done ? undefined : r.value;
  }
}

/**
 * Runs `handler` on batches of events with at most `concurrency` batches in
 * flight; resolves when `signal` aborts or the sink closes, after in-flight
 * batches finish.
 */
export async function runProcessBatch(
  host: ProcessHost,
  handler: (events: SinkEvent[]) => unknown,
  options?: ProcessBatchOptions,
): Promise<void> {
  if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
  const settings = runSettings(options, host.noAck, 'processBatch');
  const maxBatch = checkInt('maxBatch', options?.maxBatch, 100, 1);
  // It drives a timer: longer would fire after 1 ms.
  const maxWaitMs = checkInt('maxWaitMs', options?.maxWaitMs, 20, 0, MAX_TIMER_MS);
  if (settings.signal?.aborted) return;
  const run = new HandlerRun(host, settings);
  // Kept in progress from the moment they are taken (see BatchSource), until settled below.
  const source = new BatchSource(run.sub, (ev) => {
    if (!host.noAck) run.running.add(ev);
  });
  const one = async (taken: SinkEvent[]): Promise<void> => {
    // All decoded at once: an asynchronous schema costs one validation's time, not one per event.
    const checks = taken.map((ev) => run.decodes(ev));
    const events: SinkEvent[] = [];
    const keep = async (): Promise<void> => {
      for (const [i, ev] of taken.entries()) {
        const decodes = checks[i];
        if (decodes === true || (await decodes)) events.push(ev);
        else run.running.delete(ev);
      }
    };
    // An asynchronous schema that never answers holds the batch like a handler that never returns: said as one.
    if (checks.every((c) => c === true)) await keep();
    else await run.handle(taken, keep);
    if (events.length === 0) return;
    let failure: { err: unknown } | undefined;
    try {
      // A copy: the handler may consume its array (shift(), splice(0)); ours must still list what to ack or nack.
      await run.handle(events, () => callBatchHandler(host, handler, [...events]));
    } catch (err) {
      failure = { err };
    } finally {
      // Out of the in-progress touches before the nack: a touch after it would undo its delay.
      for (const ev of events) run.running.delete(ev);
    }
    // What the handler acked or nacked itself is its own.
    const rest = events.filter((ev) => !ev.settled);
    if (failure === undefined) return run.ack(rest);
    // The nack is under way before the line is logged: it never depends on logging (as in process()).
    const nacking = host.noAck ? undefined : run.failed(rest);
    const last = host.noAck ? 0 : rest.filter((ev) => run.atLastDelivery(ev)).length;
    run.logger.warn(
      { count: rest.length, ids: ids(rest), err: errorText(failure.err), ...(last > 0 ? { atLastDelivery: last } : {}) },
      host.noAck
        ? NOACK_BATCH_FAILED
        : last === 0
          ? 'batch handler failed: its unsettled events nacked'
          : // Each dead letter says so when it lands ('event dead-lettered'): this line names them all.
            'batch handler failed: its unsettled events nacked or, at their last allowed delivery (maxDeliveries), moved to the dead letters',
    );
    await nacking;
  };
  try {
    await run.drive(async () => {
      for (;;) {
        const batch = await source.next(maxBatch, maxWaitMs);
        if (batch === undefined) break;
        await run.start(() => one(batch));
      }
    });
  } finally {
    run.stop();
  }
}
