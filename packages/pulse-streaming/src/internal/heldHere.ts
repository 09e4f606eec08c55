/**
 * What this instance holds now of a stream's events: those its `process()`
 * and `processBatch()` handlers are running, those waiting in the buffer of a
 * subscription that is not stalled, and those it settles: acked, nacked or
 * dead-lettered, under way or landed since the claim asking went out (a
 * nack: with the count that claim left). A claim of its own that takes one
 * of them (pending with this very consumer, found idle because a keep-alive
 * came late: a starved event loop reads replies seconds late while its
 * timers still run) must neither hand it out a second time nor dead-letter
 * it (sinkClaims.ts): a handler here would run what one still runs or
 * finished, or the buffer would hold it twice (SEMANTICS.md section 9:
 * nothing is redelivered while this consumer is alive and its handlers run;
 * a handled event is never dead-lettered).
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { type Connection, evalScript } from './driver.js';
import type { Fanout } from './fanout.js';
import { giveBackScript } from './giveBackScripts.js';
import { errorText } from './redisErrors.js';

/**
 * The events the handlers of this instance's `process()` and `processBatch()` runs hold, across
 * runs (and those whose nack or dead letter is under way), those the sink acks now, and those
 * settled (acked, dead-lettered, nacked) while claims of this instance were under way.
 */
export class RunningEvents {
  /** Each tracked set, and whether its events are held only until settled (a run's handlers: a nack of theirs lets go). */
  readonly #runs = new Map<ReadonlySet<SinkEvent>, boolean>();
  /** How many times events were settled so far (`settled`): a claim notes it when sent. */
  #settles = 0;
  /** The stream and the settle count of each claim under way, in the order sent (counts never fall). */
  readonly #claims: Array<{ readonly name: string; readonly since: number }> = [];
  /** Settles while claims of their stream were under way, in order: what such a claim may have taken. */
  #noted: Array<{
    readonly n: number;
    readonly name: string;
    readonly ids: readonly string[];
    readonly counts: readonly number[] | undefined;
  }> = [];

  /**
   * @param acking The IDs of stream `name` the sink acks now: issued, or
   *   sent and not answered (acks.ts `SinkAcks.acking`, whatever acked them: a
   *   run, a handler itself, a `for await` loop).
   */
  constructor(private readonly acking: (name: string) => Iterable<string>) {}

  /**
   * Adds events held here: those a run's handlers run (kept in progress by
   * it), or whose nack or dead letter is under way; returns what takes them
   * out again (nothing keeps them then). `untilSettled` (a run's set): each
   * only until it is settled, its ack, nack or dead letter holding it then
   * while under way; held on, a handler that nacked and went on working kept
   * its event from the claim that came when the nack was due.
   */
  track(running: ReadonlySet<SinkEvent>, untilSettled = false): () => void {
    this.#runs.set(running, untilSettled);
    return () => this.#runs.delete(running);
  }

  /** The IDs of the events of stream `name` tracked here (`track`), or whose ack is under way. */
  *held(name: string): Generator<string> {
    for (const [running, untilSettled] of this.#runs)
      for (const ev of running) if (ev.streamName === name && !(untilSettled && ev.settled)) yield ev.id;
    yield* this.acking(name);
  }

  /**
   * A claim of stream `name` goes out now; returns what to pass to
   * {@link heldHere} and to {@link RunningEvents.claimDone} once all it took
   * was handed out.
   */
  claimSent(name: string): number {
    this.#claims.push({ name, since: this.#settles });
    return this.#settles;
  }

  /** The claim of stream `name` sent at `since` is done: the settles only it could have raced are forgotten. */
  claimDone(name: string, since: number): void {
    const i = this.#claims.findIndex((c) => c.name === name && c.since === since);
    if (i >= 0) this.#claims.splice(i, 1);
    const oldest = this.#claims[0]?.since;
    if (oldest === undefined) this.#noted = [];
    else if ((this.#noted[0]?.n ?? Number.POSITIVE_INFINITY) <= oldest) this.#noted = this.#noted.filter((a) => a.n > oldest);
  }

  /**
   * Events `ids` of stream `name` were settled: an XACK passed (acks.ts
   * `onAcked`), a dead letter acked them, or a nack landed (its delay must
   * hold; `counts`: the delivery counts it found). Noted only while claims of
   * that stream are under way: one that ran in Redis before it took these
   * events back (their keep-alive came late), and its reply may be read after
   * this (acks go on the user's client, claims on the sink's own connection).
   * A claim that ran after an ack cannot take the event; one that ran after a
   * nack takes it when due, rightly, and left a count other than the nack's
   * (raised; not for an event at max deliveries the claim leaves to the
   * client, which keeps its count: such a one is dead-lettered a grace period
   * late).
   */
  settled(name: string, ids: readonly string[], counts?: readonly number[]): void {
    this.#settles++;
    if (this.#claims.some((c) => c.name === name)) this.#noted.push({ n: this.#settles, name, ids, counts });
  }

  /**
   * The events of stream `name` settled since the claim sent at `since` went
   * out, with the delivery count a nack found (undefined: acked).
   */
  *settledSince(name: string, since: number): Generator<[string, number | undefined]> {
    for (const a of this.#noted) {
      if (a.n <= since || a.name !== name) continue;
      for (const [i, id] of a.ids.entries()) yield [id, a.counts?.[i]];
    }
  }
}

/** The IDs of the events of stream `name` this instance holds now (see the file's comment), one at a time. */
function* heldOf(fanout: Fanout<SinkEvent>, running: RunningEvents, name: string): Generator<string> {
  yield* running.held(name);
  // A stalled subscription's buffer is not held (its events went to others or back to Redis):
  // a claimed copy supersedes what is left there (`dropBuffered`).
  for (const sub of fanout.subs) {
    if (sub.ended || sub.stalled) continue;
    for (const ev of sub.queued()) if (ev.streamName === name) yield ev.id;
  }
}

/**
 * Of `ids` (events of stream `name` a claim sent at `since`, see
 * `RunningEvents.claimSent`, took, with the delivery counts `countOf` it
 * left them with), those this instance holds now, those it acked since the
 * claim went out, and those it nacked since, the nack having found the
 * claim's count (the claim ran first).
 */
export function heldHere(
  fanout: Fanout<SinkEvent>,
  running: RunningEvents,
  name: string,
  ids: readonly string[],
  since: number,
  countOf: ReadonlyMap<string, number>,
): Set<string> {
  const wanted = new Set(ids);
  const held = new Set<string>();
  for (const id of heldOf(fanout, running, name)) if (wanted.has(id)) held.add(id);
  for (const [id, count] of running.settledSince(name, since))
    if (wanted.has(id) && (count === undefined || countOf.get(id) === count)) held.add(id);
  return held;
}

/** The IDs of the events of stream `name` this instance holds now (see the file's comment). */
export function heldIds(fanout: Fanout<SinkEvent>, running: RunningEvents, name: string): Set<string> {
  return new Set(heldOf(fanout, running, name));
}

/** Whether this instance holds any event of stream `name` now: stops at the first. */
export function holdsAny(fanout: Fanout<SinkEvent>, running: RunningEvents, name: string): boolean {
  return !heldOf(fanout, running, name).next().done;
}

/**
 * Sets back by one the delivery count of claimed events kept here (`held`, claimed with the counts
 * of `countOf`): the claim raised it (`RETRYCOUNT`), though no handler saw them again, and
 * `maxDeliveries` goes by it: a handler here that then failed would get one attempt fewer. Only
 * those still pending for this consumer with the count the claim set, and still in the stream
 * (giveBack's script); those acked meanwhile are left alone. Failing, they keep the raised count
 * (said on a debug line): at most one attempt fewer, nothing lost.
 */
export async function keepCounts(
  sink: { readonly control: Connection; readonly name: string; readonly consumerName: string; readonly logger: Logger },
  key: string,
  held: ReadonlySet<string>,
  countOf: ReadonlyMap<string, number>,
): Promise<void> {
  const pairs: Array<string | number> = [];
  for (const id of held) {
    const n = countOf.get(id);
    if (n !== undefined && n > 1) pairs.push(id, n);
  }
  if (pairs.length === 0) return;
  try {
    await evalScript(sink.control, giveBackScript, [key], [sink.name, sink.consumerName, ...pairs]);
  } catch (err) {
    sink.logger.debug(
      { count: pairs.length / 2, err: errorText(err) },
      'could not set back the delivery count of claimed events kept here: counted once more',
    );
  }
}
