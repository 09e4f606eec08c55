/**
 * What a sink reports lost when its stream's key is gone (see
 * `SinkHolds.streamGone`): after `destroy()` the obituary's exact count;
 * after an expiry an estimate from the last trim check (the group's unread
 * and pending events then), less the pending events this instance acked
 * since, never fewer than the events it had buffered.
 *
 * The acks and the checks travel on different connections, so their order in
 * Redis is known only when one was sent after the other's reply came back.
 * An ack that may have run before the check stays in the estimate (a loss
 * said twice rather than hidden) and asks for a check sent after its reply
 * (`recheckAfter`). A busy stream gets one with its next read; a quiet one
 * from `Rechecks`, once, within `RECHECK_MS`.
 */
import { compareIds } from './ids.js';
import { streamKey } from './keys.js';
import { NO_OBITUARY, OBITUARY_TAKEN } from './lossScripts.js';
import type { RawEntry } from './replies.js';
import type { SinkStream } from './sinkState.js';

/** A stream with no trim check applied for this long is quiet: a check it wants is made on its own (ms). */
export const RECHECK_MS = 100;

/** How long before a stream expires its last check is made (ms): see `Rechecks.expiring`. */
export const FINAL_CHECK_MS = 50;

/**
 * How long before a stream expires a check is made ahead of the last one
 * (ms): a loaded process runs the last one late, after the expiry, and the
 * estimate is then this one's, not the one of the last read, made before the
 * acks of the other instances (their events counted as lost).
 */
export const EARLY_CHECK_MS = 500;

/** When stream `s` wants its next check before it expires (`performance.now()`), if it does. */
export function finalCheckAt(s: SinkStream): number | undefined {
  if (s.expiresAt === undefined) return undefined;
  // A check applied after a mark stands for it: the early one, then the last one.
  for (const ahead of [EARLY_CHECK_MS, FINAL_CHECK_MS]) {
    const at = s.expiresAt - ahead;
    if (at > s.checkAppliedAt) return at;
  }
  return undefined;
}

/** Whether stream `s`'s last check before it expires is due at `now`. */
function finalDue(s: SinkStream, now: number): boolean {
  const at = finalCheckAt(s);
  return at !== undefined && at <= now;
}

/**
 * Whether stream `s` wants a check on its own now: an ack may have run
 * before its last one, and no read brought another since; or it expires
 * soon (see `Rechecks.expiring`).
 */
export function wantsRecheck(s: SinkStream, now = performance.now()): boolean {
  return (s.recheckAfter !== undefined && now - s.checkAppliedAt >= RECHECK_MS) || finalDue(s, now);
}

/**
 * Makes the checks that quiet streams want (see `wantsRecheck`): one timer at
 * a time, never after the sink closed, backing off (to 5 s) while checks do
 * not go through (Redis away: `verifyReads` logs each failure).
 */
export class Rechecks {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #delay = RECHECK_MS;
  #finalTimer: ReturnType<typeof setTimeout> | undefined;
  /** When `#finalTimer` fires (`performance.now()`). */
  #finalAt = Number.POSITIVE_INFINITY;

  constructor(
    /** The sink's streams by key. */
    private readonly streams: ReadonlyMap<string, SinkStream>,
    /** Checks these streams (`SinkReads.verifyReads`: it logs what fails). */
    private readonly check: (streams: SinkStream[]) => Promise<void>,
    private readonly closed: AbortSignal,
  ) {
    // Cleared at close: a final check's timer runs until the stream's expiry (an hour, days)
    // and holds this sink, its streams and its buffered events in memory until then.
    closed.addEventListener('abort', () => this.#stop(), { once: true });
  }

  #stop(): void {
    clearTimeout(this.#finalTimer);
    this.#finalTimer = undefined;
    this.#finalAt = Number.POSITIVE_INFINITY;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** `SinkAcks`' hook: an XACK on stream `name` passed (see `noteAcked`). */
  readonly onAcked = (name: string, ids: readonly string[], acked: number, sentAt: number, repliedAt: number): void => {
    noteAcked(this.streams.get(streamKey(name)), ids, acked, sentAt, repliedAt);
    this.acked();
  };

  /**
   * A check of stream `s` was applied: when the stream expires, it is checked
   * again `EARLY_CHECK_MS` and `FINAL_CHECK_MS` before, so that what the
   * expiry takes is estimated from the group as it is then. A stream handled and then quiet
   * until it expires was estimated from its last read's check, before the
   * acks of the other instances: their events counted as lost.
   */
  expiring(s: SinkStream): void {
    const at = finalCheckAt(s);
    if (at === undefined || at >= this.#finalAt || this.closed.aborted) return;
    clearTimeout(this.#finalTimer);
    this.#finalAt = at;
    this.#finalTimer = setTimeout(() => void this.#runFinal(), Math.max(0, at - performance.now()));
    this.#finalTimer.unref?.();
  }

  async #runFinal(): Promise<void> {
    this.#finalTimer = undefined;
    this.#finalAt = Number.POSITIVE_INFINITY;
    if (this.closed.aborted) return;
    const now = performance.now();
    const due = [...this.streams.values()].filter((s) => finalDue(s, now));
    // One try: a check that fails leaves the estimate of the last one.
    await this.check(due).catch(() => {});
    // The others (a check since made theirs later); not again those whose check failed.
    const later = performance.now();
    for (const s of this.streams.values()) if ((finalCheckAt(s) ?? 0) > later) this.expiring(s);
  }

  /** An ack was answered: a check of its stream that it may have raced may want another, once the stream is quiet. */
  acked(): void {
    if (this.#timer !== undefined || this.closed.aborted) return;
    this.#timer = setTimeout(() => void this.#run(), this.#delay);
    this.#timer.unref?.();
  }

  async #run(): Promise<void> {
    if (this.closed.aborted) return;
    const now = performance.now();
    const wanting = [...this.streams.values()].filter((s) => s.recheckAfter !== undefined);
    const due = wanting.filter((s) => wantsRecheck(s, now));
    await this.check(due).catch(() => {});
    this.#timer = undefined;
    // A check that went through leaves a stream wanting none (or applied, if it wants another).
    const failed = due.some((s) => s.checkAppliedAt < now);
    this.#delay = failed ? Math.min(2 * this.#delay, 5000) : RECHECK_MS;
    // Busy ones get theirs with their next read; look again while any still wants one.
    if (wanting.some((s) => s.recheckAfter !== undefined)) this.acked();
  }
}

/**
 * What a trim check sent at `sentAt` (`performance.now()`) saw of stream `s`,
 * kept for the estimate if the stream goes: `lag` unread events, `pending`
 * pending ones up to `last` (the group's position), the lease as this
 * instance's last sweep said, when the stream expires (`pttl`, as PTTL
 * said, counted from the send: never later than it will), and its last
 * entry (`tail`).
 */
export function recordCheck(
  s: SinkStream,
  lag: number,
  pending: number,
  last: string,
  sentAt: number,
  pttl = -1,
  tail?: string,
): void {
  s.expiresAt = pttl > 0 ? sentAt + pttl : undefined;
  s.tailAtCheck = tail;
  s.lag = lag;
  s.pending = pending;
  s.pendingUpTo = last;
  s.ackedSinceCheck = 0;
  s.leaseAtCheck = s.leaseHeld;
  s.holderAtCheck = s.leaseHolder;
  s.checkAppliedAt = performance.now();
  if (s.recheckAfter !== undefined && sentAt > s.recheckAfter) s.recheckAfter = undefined;
  // An ack answered after this check was sent may have run after it: its events are in `pending`.
  if (s.lastAckAt > sentAt) s.recheckAfter = Math.max(s.recheckAfter ?? 0, s.lastAckAt);
}

/**
 * The read that followed a trim check in its MULTI delivered these entries
 * of stream `s` to this instance: unread at the check, pending now (Redis
 * ran the two one after the other, so this is exact). Not for blocking
 * reads: what they deliver may have been added after the check.
 */
export function readAfterCheck(s: SinkStream, entries: readonly RawEntry[] | undefined): void {
  const last = entries?.[entries.length - 1];
  if (!entries || !last || s.lag < 0) return;
  s.lag = Math.max(0, s.lag - entries.length);
  s.pending += entries.length;
  s.pendingUpTo = last[0];
}

/**
 * An XACK of this instance on stream `s`, sent at `sentAt` and answered at
 * `repliedAt`, acked `acked` of `ids`. Those pending at the last check (IDs
 * up to the group's position then) leave the estimate when the XACK surely
 * ran after the check: sent after the check's reply was applied. Otherwise
 * it may have run before the check, and taking it off would hide a loss:
 * the stream wants a check sent after this reply.
 */
export function noteAcked(
  s: SinkStream | undefined,
  ids: readonly string[],
  acked: number,
  sentAt: number,
  repliedAt: number,
): void {
  if (!s || acked === 0) return;
  s.lastAckAt = Math.max(s.lastAckAt, repliedAt);
  const upTo = s.pendingUpTo;
  if (upTo === undefined) return;
  let n = 0;
  for (const id of ids) if (compareIds(id, upTo) <= 0) n++;
  if (n === 0) return;
  if (sentAt > s.checkAppliedAt) s.ackedSinceCheck += Math.min(n, acked);
  else s.recheckAfter = Math.max(s.recheckAfter ?? 0, repliedAt);
}

/** The estimate of what went with an expired stream (-1: no check since it was read). */
export function expiryEstimate(s: SinkStream): number {
  return s.lag >= 0 ? s.lag + Math.max(0, s.pending - s.ackedSinceCheck) : -1;
}

/**
 * How many events an instance reports lost when it finds its stream gone
 * (`obituary` as `takeObituary` returns it): after `destroy()`, the
 * obituary's count for the one instance that took it (0 or more: exact,
 * never an estimate) and none for the others (`OBITUARY_TAKEN`: its count has
 * their buffered events, which were pending); after an expiry
 * (`NO_OBITUARY`), what `lostWithStream` says from the last check's
 * `estimate`, or the buffered events when there was no check (-1).
 */
export function lostWhenGone(obituary: number, estimate: number, leaseAtCheck: boolean | undefined, buffered: number): number {
  if (obituary === OBITUARY_TAKEN) return 0;
  if (obituary !== NO_OBITUARY) return obituary;
  return estimate < 0 ? buffered : lostWithStream(estimate, leaseAtCheck, buffered);
}

/**
 * How many events an instance reports lost with an expired stream, from the
 * estimate of its last trim check (the group's unread and pending events
 * then) and the events it had buffered (certainly lost: never handed out).
 * One report for the whole sink, by the instance that held the lease at that
 * check (a key to decide it would outlive the stream): the others' buffered
 * events are in its estimate, and they leave it to that holder (see
 * holderWatch.ts). The holder reports at
 * least its own buffered events: a check made before they were read counts
 * none of them. An instance that did not know yet whether it held the lease
 * (its first sweep had not answered: a loaded machine) reports as a holder
 * would: most sinks have one instance, and a loss counted twice is said,
 * where one not counted is silent.
 */
export function lostWithStream(estimate: number, leaseAtCheck: boolean | undefined, buffered: number): number {
  return leaseAtCheck === false ? 0 : Math.max(estimate, buffered);
}
