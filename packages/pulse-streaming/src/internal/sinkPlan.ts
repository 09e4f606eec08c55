/**
 * Which streams a sink instance's sweep covers, and which of them with the
 * cleanup of stale consumers (the why is in sinkMaintenance.ts): only those
 * where something may wait, and a slow backstop over all.
 */

import { monotonicNow } from './clock.js';
import { claimRoom, roomToClaim } from './sinkClaims.js';
import type { MaintenanceHost } from './sinkHosts.js';
import type { Beat } from './sinkLiveness.js';
import type { SinkStream } from './sinkState.js';

/**
 * The backstop sweep visits each stream at least this often per stream the
 * instance reads (and at least every 10 grace periods): a sweep with cleanup
 * costs about 8 commands per stream, so 0.8 commands/s at most for it.
 */
const BACKSTOP_MS_PER_STREAM = 10_000;

/** After an instance went stale, its streams are cleaned up (while one is left) for this many grace periods at most. */
const CLEANUP_GRACES = 4;

/** After a reconnect, every stream is swept for this many grace periods (events a lost reply delivered turn idle). */
const SUSPECT_GRACES = 2;

export class SweepPlanner {
  /** The backstop: streams owed a sweep (fractional), and where the walk is. */
  #credit = 0;
  #cursor = 0;
  /** The sink's reconnects as of the last sweep. */
  #reconnects: number;
  /**
   * Streams (by key) this instance stopped reading while it still had events
   * pending there (removeStream): swept until it has none, what turns idle
   * there handed to the others through the work set (see `leaveBehind`).
   */
  readonly #behind = new Map<string, SinkStream>();
  /** Left behind, nothing of this instance pending there any more: to leave (see `leaving`). */
  readonly #leaving: SinkStream[] = [];

  constructor(
    private readonly host: MaintenanceHost,
    /** How often the sweep runs (ms). */
    private readonly sweepMs: number,
  ) {
    this.#reconnects = host.reconnects();
  }

  /**
   * This instance stopped reading stream `s` (removeStream) but still has
   * events pending there (a handler at work, or given back): it is swept
   * until none is left, and what turns idle there (a nack, an event never
   * acked) goes to the work set (see `isBehind`), so that an instance still
   * reading it claims it within a sweep or two, not at its backstop.
   */
  leaveBehind(s: SinkStream): void {
    // Something of this instance is pending there (leave said so): swept until a sweep finds none.
    s.sweep.mine = Math.max(s.sweep.mine, 1);
    this.#behind.set(s.stream.key, s);
  }

  /** Streams left behind where a sweep found nothing of this instance pending: to leave now (taken once). */
  leaving(): SinkStream[] {
    return this.#leaving.splice(0);
  }

  /** The streams left behind where this instance may still have events pending. */
  behind(): SinkStream[] {
    return [...this.#behind.values()];
  }

  /** True when `s` is a stream left behind (not read by this instance). */
  isBehind(s: SinkStream): boolean {
    return this.#behind.get(s.stream.key) === s;
  }

  /** True when the stream of `key` is left behind and not read again since. */
  isBehindKey(key: string): boolean {
    const s = this.#behind.get(key);
    if (s === undefined) return false;
    for (const r of this.host.streams()) if (r.stream.key === key) return false;
    return true;
  }

  /** Streams just added (or whose key is back): all with cleanup. */
  planNew(): Map<SinkStream, boolean> {
    const now = monotonicNow();
    const plan = new Map<SinkStream, boolean>();
    for (const s of this.host.streams()) {
      if (!s.ready || !s.sweep.next) continue;
      s.sweep.left = -1;
      s.sweep.cleanupUntil = now + CLEANUP_GRACES * this.host.settings.graceMs;
      plan.set(s, true);
    }
    return plan;
  }

  /** Which streams this sweep covers (true: with cleanup); see sinkMaintenance.ts. */
  plan(beat: Omit<Beat, 'now' | 'reported'>): Map<SinkStream, boolean> {
    const now = monotonicNow();
    const grace = this.host.settings.graceMs;
    // An instance gone stale with a longer grace period: its events turn idle (claimable) that much later.
    const claimGrace = Math.max(grace, ...beat.longerGraces.values());
    const reconnects = this.host.reconnects();
    const reconnected = reconnects !== this.#reconnects;
    this.#reconnects = reconnects;
    const crash = beat.newlyStale.length > 0 || beat.reset;
    if (beat.reset) this.host.logger.warn({}, 'the record of live sink instances was lost: sweeping every stream');
    else if (crash) this.host.logger.info({ consumers: beat.newlyStale }, 'sink instances went stale: sweeping every stream');
    const { settings } = this.host;
    const room = claimRoom(this.host, settings.bufferSize + settings.maxPolled) >= roomToClaim(settings);
    const work = new Set(beat.work);
    const plan = new Map<SinkStream, boolean>();
    const streams: SinkStream[] = [];
    for (const s of this.host.streams()) {
      if (!s.ready) continue;
      streams.push(s);
      const w = s.sweep;
      if (reconnected) w.until = now + SUSPECT_GRACES * grace;
      // A new stream (any consumer left from before), or an instance went stale: clean up
      // until no consumer of an instance not live is left, for a while.
      if (crash || w.next) {
        w.left = -1;
        w.cleanupUntil = now + CLEANUP_GRACES * grace;
      }
      // A stale instance counts as live until it misses a second grace period (its own): clean up
      // until then at least, whatever a sweep finds left before it.
      if (crash) {
        w.cleanupFloor = now + 2 * claimGrace + this.sweepMs;
        w.cleanupUntil = Math.max(w.cleanupUntil, w.cleanupFloor + CLEANUP_GRACES * grace);
      }
      // An instance just seen stale may have held or read events until it
      // crashed, up to a sweep period after its last liveness call: they turn
      // idle up to a grace period after that, when it may still count as live
      // (so no consumer of it is 'left'). Swept every time until then.
      if (crash) w.until = Math.max(w.until, now + claimGrace + this.sweepMs);
      const cleanup = (w.left !== 0 || now < w.cleanupFloor) && now < w.cleanupUntil;
      if (cleanup || beat.lapsed || w.mine > 0 || w.read !== s.lastRead || now < w.until || (room && work.has(s.stream.key)))
        plan.set(s, cleanup);
    }
    // Left behind by removeStream: swept until nothing of this instance is pending there.
    const read = new Set(streams.map((s) => s.stream.key));
    for (const [key, s] of this.#behind) {
      if (read.has(key) || s.sweep.mine === 0) this.#behind.delete(key);
      else plan.set(s, false);
      // Nothing of this instance pending there any more: it leaves the group as removeStream would
      // have (destroyed when no one is left), or the group stayed for good (outside review V).
      if (!read.has(key) && s.sweep.mine === 0) this.#leaving.push(s);
    }
    // The backstop: a few streams per sweep, in turn, with cleanup.
    if (streams.length > 0) {
      const periodMs = Math.max(10 * grace, streams.length * BACKSTOP_MS_PER_STREAM);
      this.#credit = Math.min(this.#credit + (streams.length * this.sweepMs) / periodMs, streams.length);
      for (; this.#credit >= 1; this.#credit--) plan.set(streams[this.#cursor++ % streams.length] as SinkStream, true);
    }
    return plan;
  }
}
