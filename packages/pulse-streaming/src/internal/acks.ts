/**
 * A sink's acks: those issued in one turn of the event loop travel as one
 * XACK per stream, and each stream's outcome settles only its own acks.
 */
import { ClosedError, InvalidArgumentError } from '../errors.js';
import { type Event, SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { Backoff, sleep } from './backoff.js';
import type { Outcome } from './batcher.js';
import { monotonicNow } from './clock.js';
import type { Connection } from './driver.js';
import { streamKey } from './keys.js';
import { errorText, isReplyError, isRetryable, toPulseError } from './redisErrors.js';
import type { SinkCounters } from './sinkState.js';
import { checkAckable } from './validate.js';

/**
 * Marks settled the events `acker` (sink `sinkName`) delivered itself, and
 * checks the others, before any Redis call; returns the error of the first
 * that cannot be acked: not an event a sink delivered (a reader's event, a
 * copy), or delivered by a sink of another name.
 */
export function settleForAck(events: readonly Event[], acker: object, sinkName: string): Error | undefined {
  // Delivered by this instance: read from Redis, nothing to check (the hot path, one event).
  if (events.length === 1 && events[0] instanceof SinkEvent && events[0].acker === acker) {
    events[0].markSettled();
    return undefined;
  }
  // All checked before any is marked: a call that rejects must leave every event as it was
  // (one marked settled but never acked would be skipped by process() and never acked).
  for (const e of events) {
    if (e instanceof SinkEvent && e.acker === acker) continue;
    try {
      checkAckable(e);
    } catch (err) {
      return err as Error;
    }
    // A reader's event, or a copy of an event ({ id, streamName }), would ack this sink's pending
    // entry of that ID, which its own handler may not have finished: never redelivered.
    if (!(e instanceof SinkEvent))
      return new InvalidArgumentError(`ack: event ${e.id} was not delivered by a sink (a reader's event, or a copy)`);
    if (e.sinkName !== sinkName)
      return new InvalidArgumentError(`ack: event ${e.id} was delivered by sink ${e.sinkName}, not ${sinkName}`);
  }
  for (const e of events) if (e instanceof SinkEvent && e.acker === acker) e.markSettled();
  return undefined;
}

/**
 * Where an XACK that failed on the user's client goes again: the sink's own
 * connection. Without it a dropped connection, or a client Redis stopped
 * accepting (a password set since it connected), made every handled event
 * come back after the grace period, again and again until dead-lettered.
 */
export interface AckRetry {
  /** The sink's own connection; undefined once the sink is closed (acks after `close()` are not retried). */
  readonly conn: () => Connection | undefined;
  /** How long to keep trying (ms): past the grace period the event may be another consumer's. */
  readonly forMs: number;
}

/** When each sink's logger last said an ack went on the sink's own connection. */
const warnedAt = new WeakMap<Logger, number>();
const WARN_EVERY_MS = 10_000;

/**
 * Sends `cmd` (an XACK that failed with `error`) again on the sink's own
 * connection with backoff, for up to `retry.forMs`; resolves to its reply,
 * or undefined when it could not be sent (the events then come back after
 * the grace period, as the ack's rejection says).
 */
async function ackAgain(
  retry: AckRetry,
  cmd: string[],
  key: string,
  error: unknown,
  logger: Logger,
): Promise<number | undefined> {
  // The group or the key is gone, or holds another type: sending it again changes nothing.
  if (isReplyError(error, 'NOGROUP') || isReplyError(error, 'WRONGTYPE')) return undefined;
  const until = monotonicNow() + retry.forMs;
  const backoff = new Backoff(50, 1000);
  let last = error;
  for (;;) {
    const conn = retry.conn();
    if (conn === undefined) break;
    try {
      const value = Number(await conn.send(cmd, key));
      // Once per outage, not per tick: every ack of an outage comes this way.
      if (monotonicNow() - (warnedAt.get(logger) ?? 0) > WARN_EVERY_MS) {
        warnedAt.set(logger, monotonicNow());
        logger.warn(
          { err: errorText(error), count: cmd.length - 3 },
          "ack failed on your Redis client: sent on the sink's own connection",
        );
      }
      return value;
    } catch (err) {
      last = err;
      if (!isRetryable(err)) break;
    }
    const delay = backoff.next();
    if (monotonicNow() + delay > until) break;
    await sleep(delay);
  }
  logger.debug({ err: errorText(last) }, "ack could not be sent on the sink's own connection either");
  return undefined;
}

/**
 * Acks `batch` (stream name -> IDs) in group `group`, one XACK per stream,
 * and resolves (never rejects) to each stream's outcome, so that one stream's
 * failure (WRONGTYPE...) fails only the acks of that stream. Counts what
 * was acked, and what was no longer pending (`staleAcks`, logged).
 */
export async function sendAcks(
  conn: Connection & { closed?(): string | undefined },
  group: string,
  batch: ReadonlyMap<string, string[]>,
  counters: SinkCounters,
  logger: Logger,
  onAcked?: (name: string, ids: readonly string[], acked: number, sentAt: number, repliedAt: number) => void,
  retry?: AckRetry,
): Promise<Map<string, Outcome>> {
  const sentAt = performance.now();
  const outcomes = new Map<string, Outcome>();
  await Promise.all(
    [...batch].map(async ([name, ids]) => {
      const key = streamKey(name);
      const cmd = ['XACK', key, group, ...ids];
      try {
        let value: number;
        let again = false;
        try {
          // A client closed while it waited to reconnect (ioredis) never settles what it is
          // given: refuse at once (the sink's own connection still gets the ack when open).
          const closed = conn.closed?.();
          if (closed !== undefined) throw new ClosedError(`ack events of sink ${group} on stream ${name}: ${closed}`);
          value = Number(await conn.send(cmd, key));
        } catch (error) {
          const v = retry ? await ackAgain(retry, cmd, key, error, logger) : undefined;
          if (v === undefined) throw error;
          value = v;
          again = true;
        }
        outcomes.set(name, { ok: true, value });
        counters.acked += value;
        onAcked?.(name, ids, value, sentAt, performance.now());
        // XACK counts only entries still pending: the others were handled
        // twice, or after they were given up. Which ones of a batch, it does not say.
        // Sent again after a failure, the first may have run (only its reply lost): not counted as stale.
        const stale = again ? 0 : ids.length - value;
        if (stale > 0) {
          counters.staleAcks += stale;
          logger.warn(
            { stream: name, count: stale, ids },
            `${stale} of these acked events were no longer pending: acked already (here, or by another consumer after a redelivery), dead-lettered or reported lost`,
          );
        }
      } catch (error) {
        outcomes.set(name, { ok: false, error });
      }
    }),
  );
  return outcomes;
}

/** The acks of one sink instance, merged per tick. */
export class SinkAcks {
  #pending = new Map<string, string[]>();
  /** The acks of this tick: one XACK per stream, each stream's outcome on its own. */
  #flush: Promise<Map<string, Outcome>> | undefined;
  /** This tick's ack promise of each stream, shared by every `ack()` of the tick on that stream. */
  #ackOf = new Map<string, Promise<void>>();
  /** The batches sent and not answered yet (`acking`). */
  readonly #sending = new Set<ReadonlyMap<string, readonly string[]>>();

  constructor(
    private readonly conn: Connection & { closed?(): string | undefined },
    private readonly group: string,
    private readonly counters: SinkCounters,
    private readonly logger: Logger,
    /** Told of each stream's XACK that passed: IDs sent, how many Redis acked, when it was sent and answered (`performance.now()`). */
    private readonly onAcked?: (name: string, ids: readonly string[], acked: number, sentAt: number, repliedAt: number) => void,
    /** Where a failed XACK goes again (see `AckRetry`). */
    private readonly retry?: AckRetry,
  ) {}

  /** Acks validated events; resolves when their streams' XACKs did. */
  add(events: ReadonlyArray<{ readonly id: string; readonly streamName: string }>): Promise<void> {
    // No closure in this method (see #newTick, #ackDone): one here made V8 allocate a context per
    // call, a few hundred bytes per ack with the loop's block context (outside the hot path now).
    this.#flush ??= this.#newTick();
    const tick = this.#flush;
    let first: Promise<void> | undefined;
    let more: Promise<void>[] | undefined;
    // By stream name, not key: the name is the same string object every time
    // (its hash is cached), a key built per event would be hashed per event.
    for (const e of events) {
      const name = e.streamName;
      const ids = this.#pending.get(name);
      if (ids) ids.push(e.id);
      else this.#pending.set(name, [e.id]);
      let done = this.#ackOf.get(name);
      if (!done) {
        done = this.#ackDone(tick, name);
        this.#ackOf.set(name, done);
      }
      if (first === undefined) first = done;
      else if (done !== first) {
        more ??= [];
        if (!more.includes(done)) more.push(done);
      }
    }
    return more ? Promise.all([first, ...more]).then(() => undefined) : (first as Promise<void>);
  }

  /** The next flush: the acks of this turn of the event loop, sent at its end. */
  #newTick(): Promise<Map<string, Outcome>> {
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#send());
  }

  /** Settles with stream `name`'s XACK of the flush `tick`. */
  #ackDone(tick: Promise<Map<string, Outcome>>, name: string): Promise<void> {
    return tick.then((outcomes) => {
      const o = outcomes.get(name);
      if (o && !o.ok) throw toPulseError(o.error, `ack events of sink ${this.group} on stream ${name}`);
    });
  }

  /**
   * The IDs of stream `name` acked and not answered yet: issued this tick, or
   * sent. A claim of this instance that took one back must not hand it out
   * again (heldHere.ts): the XACK is on its way.
   */
  *acking(name: string): Generator<string> {
    const issued = this.#pending.get(name);
    if (issued) yield* issued;
    for (const batch of this.#sending) {
      const ids = batch.get(name);
      if (ids) yield* ids;
    }
  }

  /** Resolves once the acks issued so far were sent (whatever their outcome). */
  async settled(): Promise<void> {
    await this.#flush;
  }

  async #send(): Promise<Map<string, Outcome>> {
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flush = undefined;
    this.#ackOf = new Map();
    // Out of `acking` once answered: those that passed were told to `onAcked` before.
    this.#sending.add(batch);
    try {
      return await sendAcks(this.conn, this.group, batch, this.counters, this.logger, this.onAcked, this.retry);
    } finally {
      this.#sending.delete(batch);
    }
  }
}
