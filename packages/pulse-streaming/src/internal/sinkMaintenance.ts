/**
 * A sink's background work, on its own connection and timers so it never
 * waits on a subscriber: keeping buffered events from redelivery, and the
 * sweep (liveness, the lease, stale consumers, finding idle events to
 * claim), claims, and noticing a deleted stream key coming back.
 *
 * Idle cost (issue 20), whatever the number of streams: every grace period
 * / 2, one sink-wide liveness call (sinkLiveness.ts, a handful of commands
 * on one slot); the per-stream sweep (sweepScript.ts) only of the streams
 * where something may wait:
 * - where this instance read since their last sweep, or had events of its
 *   own pending then (a handler still at work, a nack, a failed ack);
 * - every stream once at start, streams as they are added (within
 *   NEW_STREAM_MS), and those whose key came back;
 * - every stream when an instance of the sink went stale (crashed or
 *   frozen: its events are idle a grace period after its last sign of
 *   life), with the cleanup of stale consumers, again on the streams where
 *   one is left until it is gone (bounded, see sinkPlan.ts);
 * - every stream for a while after a reconnect (a read reply lost with the
 *   connection leaves pending entries this instance never saw);
 * - the streams some instance found idle events on but had no room to claim
 *   (the sink-wide work set), while this instance has room;
 * - a backstop that walks all streams, a few per sweep, once every
 *   max(10 grace periods, 10 s per stream): under 1
 *   command/s whatever the number of streams.
 * Measured idle with default options (20 s grace, 5 s block): 1.4
 * commands/s over 100 or 1000 streams (test/idle.test.ts). An instance that
 * closes with nothing pending leaves the liveness set (sinkLeave.ts): only a
 * crash, or a close that left events pending, makes the others sweep all.
 * Claims run only when a sweep found idle events, when a nack of this
 * instance comes due, or while a claim came back full and the buffers have
 * room (see `SinkClaims.burst`). A crashed consumer's events are idle a
 * grace period after its last read or hold; it is seen stale a grace period
 * after its last liveness call (at most a sweep period before the crash),
 * possibly before they are idle: from then on every stream is swept each
 * time for a grace period and a sweep period more, so they are found
 * within a sweep of turning idle: 1.5 grace periods after the crash, plus
 * a claim.
 */
import { Backoff } from './backoff.js';
import { monotonicNow } from './clock.js';
import { closeWatch, type HolderWatch, holderWatch } from './holderWatch.js';
import { errorText, isRetryable, toPulseError } from './redisErrors.js';
import { sharedAbort } from './signals.js';
import { claimRoom, roomToClaim, SinkClaims } from './sinkClaims.js';
import { Alarm, DueClaims } from './sinkDue.js';
import { holdLoop } from './sinkHoldLoop.js';
import type { MaintenanceHost } from './sinkHosts.js';
import { leaveLeftBehind } from './sinkLeave.js';
import { type Beat, SinkLiveness } from './sinkLiveness.js';
import { SweepPlanner } from './sinkPlan.js';
import { groupBack, keysBack } from './sinkRecreate.js';
import type { SinkStream } from './sinkState.js';
import { type Sent, StallClock } from './stallClock.js';
import { sweepStreams } from './sweepScript.js';

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** How often the scheduler looks for buffer room while idle events wait for it (no Redis command). */
const ROOM_POLL_MS = 20;

/** Streams added within this many ms are swept together. */
const NEW_STREAM_MS = 50;

export class SinkMaintenance {
  readonly #abort = sharedAbort();
  readonly #loops: Promise<void>[];
  /** How often buffered events are held and blocking reads verified. */
  readonly #holdMs: number;
  /** How often a stream whose key is gone is looked for again. */
  readonly #awaitMs: number;
  /** How often liveness runs, and the sweep of the streams that need one. */
  readonly #sweepMs: number;
  readonly #claims: SinkClaims;
  /** Which streams each sweep covers; the streams left behind by removeStream. */
  readonly #planner: SweepPlanner;
  readonly #liveness: SinkLiveness;
  readonly #livenessBackoff = new Backoff(100, 2000);
  /** When the next sweep is due. */
  #nextSweep = 0;
  #nextAwait = 0;
  /** Live instances as of the last liveness call (this one at least), those of a longer grace period (see `Beat`). */
  #peers: Pick<Beat, 'live' | 'longerGraces' | 'differing'>;
  /** Expiry losses left to another instance, reported if it is gone before it could. */
  readonly holders: HolderWatch;
  /** When streams just added are swept (see `streamAdded`). */
  #newAt = Number.POSITIVE_INFINITY;
  /** Streams (by key) this instance put in the work set, and work streams it found empty since the last beat. */
  readonly #posted = new Set<string>();
  #workDone = new Set<string>();
  /** Streams (by key) with idle events this instance found and has not taken yet (no room, or yielded to a sweep). */
  readonly #wanted = new Set<string>();
  /** Left-behind streams with idle events, to post to the work set at the next liveness call. */
  readonly #handOff = new Set<string>();
  /** Streams where nacked events come due. */
  readonly #due = new DueClaims();
  /** Wakes the scheduler before its timer (a nack due sooner). */
  /** The scheduler's sleep: ended sooner by a nack come due, a new stream, room made, or stop. */
  readonly #alarm = new Alarm();
  /** The scheduler sleeps out a backoff after a failure. */
  #backingOff = false;
  /** Stalls of this process, seen by a beat timer: when what is read is known held. */
  readonly #clock: StallClock;
  readonly #beatTimer: NodeJS.Timeout;

  constructor(private readonly host: MaintenanceHost) {
    const grace = host.settings.graceMs;
    this.#holdMs = clamp(Math.floor(grace / 4), 10, 5000);
    this.#awaitMs = clamp(Math.floor(grace / 4), 10, 500);
    // A sweep claims events as they turn idle when it sees them about to (`turnsIdleIn`), else
    // within grace + sweep (1.5 grace periods, within the promised 2). Not capped: a long grace period is a slow one.
    this.#sweepMs = Math.max(5, Math.floor(grace / 2));
    // Stale after missing a sweep (a crash is noticed within 1.5 grace
    // periods); no longer live, so removable, after missing three.
    this.#liveness = new SinkLiveness(host, grace);
    this.#planner = new SweepPlanner(host, this.#sweepMs);
    this.#peers = { live: [host.consumerName], longerGraces: new Map(), differing: new Map() };
    this.holders = holderWatch(host, grace);
    this.#claims = new SinkClaims(
      host,
      () => this.#peers,
      (key, ms) => this.dueIn(key, ms),
      this.#abort.signal,
    );
    this.#clock = new StallClock(clamp(Math.floor(grace / 8), 5, 1000), grace);
    this.#beatTimer = setInterval(() => this.#clock.beat(), this.#clock.beatMs).unref();
    this.#loops = [holdLoop(host, this.#holdMs, this.#abort.signal), this.#sweepLoop()];
  }

  /**
   * A nack of this instance gave back an event of stream `key` that is due
   * again in `ms` (or a claim skipped one, whoever nacked it; noAck too):
   * claim it then, not at the next sweep, so that the delay
   * is honoured to within a few ms (while this instance has room; else the
   * next sweep of an instance with room finds it).
   */
  dueIn(key: string, ms: number): void {
    if (this.#abort.signal.aborted) return;
    this.#alarm.wakeBy(this.#due.add(key, ms));
  }

  /**
   * A subscriber's buffer drained below full, or emptied (`Fanout`'s
   * `onRoom`): idle events waiting for room are claimed now, not at the next
   * look for room (ROOM_POLL_MS). Without it a takeover of a large pending
   * list waited up to 20 ms for each 1000 events its consumers had long taken.
   */
  roomMade(): void {
    if (this.#wanted.size > 0 && !this.#backingOff) this.#alarm.wake();
  }

  /** See `SweepPlanner.leaveBehind`. */
  leftBehind(s: SinkStream): void {
    if (!this.#abort.signal.aborted && !this.host.settings.noAck) this.#planner.leaveBehind(s);
  }

  /** The streams left behind by removeStream where this instance may still have events pending. */
  behind(): SinkStream[] {
    return this.#planner.behind();
  }

  /**
   * A stream was added (or its key is back): sweep it soon, batched with
   * others added meanwhile (a sink adding 1000 streams sweeps them in a few calls).
   */
  streamAdded(): void {
    if (this.#abort.signal.aborted || this.#newAt !== Number.POSITIVE_INFINITY) return;
    this.#newAt = monotonicNow() + NEW_STREAM_MS;
    this.#alarm.wakeBy(this.#newAt);
  }

  /**
   * A stream's key is gone: wake the scheduler, which looks for the key every
   * `awaitMs` while a stream waits for it, so that events added to a stream
   * created anew are read within that, not after the sweep it slept until.
   */
  streamAway(): void {
    this.#alarm.wakeBy(this.#nextAwait);
  }

  /**
   * When the events of a reply handled now, to a command sent at `sentAt`,
   * are known held (see `StallClock.heldAt`): before a stall of this process,
   * they are checked before they are handed out (see `OwnershipGate`).
   */
  heldAt(sent?: Sent): number {
    return this.#clock.heldAt(sent);
  }

  /** Stops the loops; resolves when they ended. */
  stop(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#beatTimer);
    return Promise.all(this.#loops).then(() => closeWatch(this.holders, this.host));
  }

  /**
   * Decides when Redis is asked anything: the sweep every grace period / 2;
   * claims when a sweep found idle events (again while they come back full,
   * and once the buffers drained if they were full), when a nack of this
   * instance comes due; and the look for a stream key that is gone.
   */
  async #sweepLoop(): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = new Backoff(100, 2000);
    while (!signal.aborted) {
      let retryAt = 0;
      try {
        if (monotonicNow() >= this.#nextSweep) {
          this.#nextSweep = monotonicNow() + this.#sweepMs;
          await this.#sweep(signal);
        } else if (monotonicNow() >= this.#newAt) {
          await this.#sweepNew(signal);
        }
        this.#due.take(this.#wanted);
        await this.#claimWanted();
        if (monotonicNow() >= this.#nextAwait) {
          this.#nextAwait = monotonicNow() + this.#awaitMs;
          const away = [...this.host.streams()].filter((s) => !s.ready);
          for (const s of await keysBack(this.host.control, away, this.host.driver.isCluster))
            if (!signal.aborted) await this.#awaitStream(s);
        }
        backoff.reset();
      } catch (err) {
        // Refused for good (NOPERM, a bookkeeping or dead-letter key of another type): retrying
        // forever would leave redelivery, nacks and dead letters stopped while process() runs on.
        if (!signal.aborted && !isRetryable(err)) {
          this.host.fail(toPulseError(err, 'sink stopped: Redis refused its background work for good'));
          return;
        }
        const delay = backoff.next();
        retryAt = monotonicNow() + delay;
        // The sweep again after the backoff: it is what finds idle events and keeps this instance alive.
        this.#nextSweep = Math.min(this.#nextSweep, retryAt);
        if (!signal.aborted)
          this.host.logger.warn({ err: errorText(err), failures: backoff.failures, retryInMs: delay }, 'sweep failed, retrying');
      }
      // Backing off after a failure: a buffer draining must not cut the wait short (see `roomMade`).
      this.#backingOff = retryAt > 0;
      await this.#alarm.sleepUntil(Math.max(retryAt, this.#nextWake()), signal);
    }
  }

  /** Liveness, then the sweep of the streams that need one, then claims on what it found. */
  async #sweep(signal: AbortSignal): Promise<void> {
    // Work streams this instance found with idle events it had no room for, for others to take.
    const handOff = [...this.#handOff];
    const post = [...this.#wanted].filter((k) => !this.#posted.has(k)).concat(handOff);
    const done = [...this.#workDone];
    let beat: Beat;
    let call = 0;
    try {
      call = this.holders.sending();
      beat = await this.#liveness.beat(post, done, this.holders.waitingFor());
      this.#livenessBackoff.reset();
    } catch (err) {
      if (signal.aborted || !isRetryable(err)) throw err;
      // One failed liveness call (its slot's node down; one refused for good ends the sink) must not stop the
      // sweeps, due nacks and claims: they go on with the last live instances, and the call
      // is tried again after a backoff.
      const delay = this.#livenessBackoff.next();
      this.#nextSweep = Math.min(this.#nextSweep, monotonicNow() + delay);
      this.holders.unreadable();
      this.host.logger.warn(
        { err: errorText(err), failures: this.#livenessBackoff.failures, retryInMs: delay },
        'sink liveness call failed, sweeping with the last live instances',
      );
      await this.#sweepAndClaim(
        this.#planner.plan({ ...this.#peers, newlyStale: [], lapsed: false, work: [], reset: false }),
        new Set(),
        signal,
      );
      return;
    }
    for (const k of done) this.#workDone.delete(k);
    for (const k of handOff) this.#handOff.delete(k);
    // Posted and still in the set: not posted again. Taken out by another instance (it found none
    // idle yet) while this one still wants it: posted again, so that others keep helping.
    const inSet = new Set(beat.work);
    this.#posted.clear();
    for (const k of this.#wanted) if (inSet.has(k)) this.#posted.add(k);
    this.#peers = beat;
    this.holders.beat(call, beat.now, beat.reported);
    await this.#sweepAndClaim(this.#planner.plan(beat), inSet, signal);
    for (const s of await leaveLeftBehind(this.host.leaver(), this.#planner.leaving(), this.host.logger)) this.leftBehind(s);
  }

  /**
   * A stream just added (or whose key is back): swept now, with cleanup,
   * not at the next sweep, so that what waits there from before is found
   * at once and a start is over quickly. No liveness call: the last one's
   * live instances serve.
   */
  async #sweepNew(signal: AbortSignal): Promise<void> {
    this.#newAt = Number.POSITIVE_INFINITY;
    await this.#sweepAndClaim(this.#planner.planNew(), new Set(), signal);
  }

  /** Sweeps the streams of `plan`, claims what they have idle, and notes which work streams are done. */
  async #sweepAndClaim(plan: ReadonlyMap<SinkStream, boolean>, work: ReadonlySet<string>, signal: AbortSignal): Promise<void> {
    if (plan.size === 0) return;
    const found = await sweepStreams(this.host, plan, {
      ...this.#peers,
      onDiffering: (names) => this.#liveness.warnDiffers(names, this.#peers.differing),
      // Swept only now and then: the keys of a stream with a time to live
      // outlive the longest gap between two sweeps of it while it lives (any
      // read sweeps it again).
      keepAliveFloorMs: 6 * this.#sweepMs,
      behind: (s) => this.#planner.isBehind(s),
      // Claimed as it turns idle (1 ms late: past the grace period for sure), not at the next sweep.
      turnsIdleIn: (s, ms) => ms < this.#sweepMs && this.dueIn(s.stream.key, ms + 1),
      signal,
    });
    const foundKeys = new Set(found.map((s) => s.stream.key));
    for (const s of plan.keys())
      if (!foundKeys.has(s.stream.key) && (work.has(s.stream.key) || this.#posted.has(s.stream.key)))
        this.#workDone.add(s.stream.key);
    for (const st of found) {
      if (signal.aborted) break;
      // Not read here any more: the others take it, through the work set.
      if (this.#planner.isBehind(st)) {
        this.#handOff.add(st.stream.key);
        continue;
      }
      // From the sweep, the lease holder claims with no room too, to move dead letters.
      const end = await this.#claims.burst(st, this.#nextSweep, true);
      // What it claimed is pending for this instance now: swept again next time. Also when the
      // claim took nothing (a nack whose delay runs): that keeps a gone instance's delay honoured.
      st.sweep.mine = Math.max(st.sweep.mine, 1);
      if (end === 'more') this.#wanted.add(st.stream.key);
      else if (work.has(st.stream.key) || this.#posted.has(st.stream.key)) this.#workDone.add(st.stream.key);
    }
  }

  /** When the scheduler has something to do next. */
  #nextWake(): number {
    let at = Math.min(this.#nextSweep, this.#newAt, this.#due.next());
    if (this.#wanted.size > 0) at = Math.min(at, monotonicNow() + ROOM_POLL_MS);
    for (const s of this.host.streams()) if (!s.ready) at = Math.min(at, this.#nextAwait);
    return at;
  }

  /** The streams by key, as this instance reads them now. */
  #byKey(): Map<string, SinkStream> {
    const map = new Map<string, SinkStream>();
    for (const s of this.host.streams()) map.set(s.stream.key, s);
    return map;
  }

  /** Claims on every stream with idle events waiting, while there is room for them. */
  async #claimWanted(): Promise<void> {
    for (const key of this.#wanted) {
      if (!this.#planner.isBehindKey(key)) continue;
      // A nack came due on a stream this instance no longer reads: to the others at once.
      this.#wanted.delete(key);
      this.#handOff.add(key);
      this.#nextSweep = monotonicNow();
    }
    if (this.#wanted.size === 0) {
      this.#wanted.clear();
      return;
    }
    const { settings } = this.host;
    // Nothing to do until the buffers drained (checked again in ROOM_POLL_MS, no Redis command).
    if (claimRoom(this.host, settings.bufferSize + settings.maxPolled) < roomToClaim(settings)) return;
    const streams = this.#byKey();
    const order = [...this.#wanted];
    try {
      for (const key of order) {
        if (this.#abort.signal.aborted) return;
        const s = streams.get(key);
        if (!s?.ready) {
          this.#wanted.delete(key);
          continue;
        }
        const end = await this.#claims.burst(s, this.#nextSweep, false);
        s.sweep.mine = Math.max(s.sweep.mine, 1);
        if (end !== 'more') {
          this.#wanted.delete(key);
          // Taken all: out of the work set too, at the next beat.
          if (this.#posted.has(key)) this.#workDone.add(key);
        }
        if (monotonicNow() >= this.#nextSweep) return;
      }
    } finally {
      // The next round starts with the next stream: a burst takes the room there is, and the
      // stream first in line took it every round while another's crashed consumer's events waited
      // for its whole backlog (outside review AH).
      const first = order[0];
      if (first !== undefined && this.#wanted.delete(first)) this.#wanted.add(first);
    }
  }

  /** A stream whose key was gone (NOGROUP) and is back (see `groupBack`): read again. */
  async #awaitStream(s: SinkStream): Promise<void> {
    if (!(await groupBack(this.host, s))) return;
    this.streamAdded();
    await this.host.resume(s);
  }
}
