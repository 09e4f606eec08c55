/**
 * A sink's background work, on its own connection and timers so it never
 * waits on a subscriber: keeping buffered events from redelivery, and the
 * sweep (keep-alives, the lease, stale consumers, finding idle events to
 * claim), claims, and noticing a deleted stream key coming back.
 *
 * Idle cost: the sweep runs every grace period / 2, one script call per
 * hash-slot group of streams (at most SWEEP_CHUNK streams each), with the
 * keep-alive and the cleanup every other sweep. Claims run only when a sweep
 * found idle events, when a nack of this instance comes due, or while a
 * claim came back full and the buffers have room (see `SinkClaims.burst`).
 * A crashed consumer's events are idle after the grace period and found by
 * the next sweep of any instance with room: within 1.5 grace periods.
 */
import { Backoff, sleep } from './backoff.js';
import { evalScript } from './driver.js';
import { streamKey } from './keys.js';
import { errorText, isReplyError } from './redisErrors.js';
import { recreateGroup } from './scripts.js';
import { roomToClaim, SinkClaims } from './sinkClaims.js';
import type { MaintenanceHost } from './sinkHosts.js';
import type { SinkStream } from './sinkState.js';
import { sweepStreams } from './sweepScript.js';

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** How often the scheduler looks for buffer room while idle events wait for it (no Redis command). */
const ROOM_POLL_MS = 20;

/** Nack due times are kept in buckets of this many ms (one wake-up per bucket). */
const DUE_BUCKET_MS = 10;

export class SinkMaintenance {
  readonly #abort = new AbortController();
  readonly #loops: Promise<void>[];
  /** How often buffered events are held and blocking reads verified. */
  readonly #holdMs: number;
  /** How often a stream whose key is gone is looked for again. */
  readonly #awaitMs: number;
  /** How often the sweep runs (keep-alive and cleanup every other one). */
  readonly #sweepMs: number;
  readonly #leaseMs: number;
  readonly #claims: SinkClaims;
  /** When the next sweep is due, and how many ran. */
  #nextSweep = 0;
  #sweeps = 0;
  #nextAwait = 0;
  /** Streams (by key) with idle events this instance found and has not taken yet (no room, or yielded to a sweep). */
  readonly #wanted = new Set<string>();
  /** Nacks of this instance coming due: bucket time (ms) -> stream keys. */
  readonly #due = new Map<number, Set<string>>();
  /** Wakes the scheduler before its timer (a nack due sooner). */
  #wake: (() => void) | undefined;
  #wakeAt = Number.POSITIVE_INFINITY;
  /** Last tick of the beat timer, and the longest gap between ticks that is not a stall. */
  #beat = Date.now();
  /** The last gap in the beats: when it began, and until when reads may carry replies from before it. */
  #stall: { before: number; until: number } | undefined;
  readonly #beatMs: number;
  readonly #beatTimer: NodeJS.Timeout;

  constructor(private readonly host: MaintenanceHost) {
    const grace = host.settings.graceMs;
    this.#holdMs = clamp(Math.floor(grace / 4), 10, 5000);
    this.#awaitMs = clamp(Math.floor(grace / 4), 10, 500);
    // Idle events are found within grace + sweep: 1.5 grace periods, within
    // the promised 2. Not capped: a long grace period is a slow one.
    this.#sweepMs = Math.max(5, Math.floor(grace / 2));
    // Renewed every sweep: a holder that misses two sweeps loses it.
    this.#leaseMs = Math.max(3 * this.#sweepMs, 200);
    this.#claims = new SinkClaims(host);
    this.#beatMs = clamp(Math.floor(grace / 8), 5, 1000);
    this.#beatTimer = setInterval(() => {
      const now = Date.now();
      // A gap in the beats: the process was frozen or its event loop blocked.
      // A read reply may have waited through it in the socket, and reach the
      // buffers after this beat: until the grace period has passed, what is
      // read counts as held since before the gap.
      if (now - this.#beat > 4 * this.#beatMs) this.#stall = { before: this.#beat, until: now + host.settings.graceMs };
      this.#beat = now;
    }, this.#beatMs).unref();
    this.#loops = [this.#holdLoop(), this.#sweepLoop()];
  }

  /**
   * A nack of this instance gave back an event of stream `key` that is due
   * again in `ms`: claim it then, not at the next sweep, so that the delay
   * is honoured to within a few ms (while this instance has room; else the
   * next sweep of an instance with room finds it).
   */
  dueIn(key: string, ms: number): void {
    if (this.#abort.signal.aborted || this.host.settings.noAck) return;
    // After the nack's reply: its idle time was set before now on the server.
    const at = Math.ceil((Date.now() + ms + 1) / DUE_BUCKET_MS) * DUE_BUCKET_MS;
    const keys = this.#due.get(at) ?? new Set<string>();
    keys.add(key);
    this.#due.set(at, keys);
    if (at < this.#wakeAt) this.#wake?.();
  }

  /**
   * When events read or claimed just now are known held: now, unless the
   * beat timer has not run for a while. Then the process was frozen or its
   * event loop blocked, and the reply may have waited through it while others
   * took its events: the time of the last beat, so they are checked before
   * they are handed out (see `OwnershipGate`).
   */
  heldAt(): number {
    const now = Date.now();
    if (now - this.#beat > 4 * this.#beatMs) return this.#beat;
    if (this.#stall !== undefined) {
      if (now < this.#stall.until) return this.#stall.before;
      this.#stall = undefined;
    }
    return now;
  }

  /** Stops the loops; resolves when they ended. */
  stop(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#beatTimer);
    return Promise.all(this.#loops).then(() => undefined);
  }

  /**
   * Keeps buffered events from redelivery and verifies blocking reads, on
   * its own timer, never behind a slow subscriber. Costs nothing in Redis
   * while nothing is buffered and nothing was read.
   */
  async #holdLoop(): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = new Backoff(100, 2000);
    while (!signal.aborted) {
      let delay = this.#holdMs;
      try {
        await this.#holdBuffered();
        await this.host.verifyReads();
        if (backoff.failures > 0) this.host.logger.info({ failures: backoff.failures }, 'holding buffered events recovered');
        backoff.reset();
      } catch (err) {
        delay = Math.max(delay, backoff.next());
        if (!signal.aborted)
          this.host.logger.warn(
            { err: errorText(err), failures: backoff.failures, retryInMs: delay },
            'holding buffered events failed, retrying',
          );
      }
      await sleep(delay, signal);
    }
  }

  /**
   * Events read but still waiting in a subscription's buffer are not being
   * worked on yet: keep their idle time at 0 so the grace period runs from
   * hand-off, not from the read, and a slow subscriber does not cause a storm
   * of redeliveries. Only while the subscriber keeps taking events: a stuck
   * one lets them go to others after the grace period.
   */
  async #holdBuffered(): Promise<void> {
    if (this.host.settings.noAck) return;
    const at = Date.now();
    const activeSince = at - this.host.settings.graceMs;
    const held: Array<{ markHeld(at: number): void }> = [];
    // stream name -> id -> keep its idle time at 0 (the subscriber is active) or only check it still exists.
    // By name, the same string object for every event of a stream: no key built per buffered event.
    const byStream = new Map<string, Map<string, boolean>>();
    for (const sub of this.host.fanout.subs) {
      const active = sub.lastActivity >= activeSince;
      if (active) held.push(sub);
      for (const ev of sub.queued()) {
        const ids = byStream.get(ev.streamName) ?? new Map<string, boolean>();
        byStream.set(ev.streamName, ids);
        ids.set(ev.id, active || ids.get(ev.id) === true);
      }
    }
    for (const [name, ids] of byStream) {
      const key = streamKey(name);
      for (const hold of [true, false]) {
        const batch = [...ids].filter(([, h]) => h === hold).map(([id]) => id);
        for (let i = 0; i < batch.length; i += 500) {
          // Only what is still buffered as it leaves: an event taken and
          // nacked meanwhile must keep the idle time its nack gave it (the
          // nack travels on this same connection, so it runs after this).
          const slice = hold ? this.host.stillBuffered(name, batch.slice(i, i + 500)) : batch.slice(i, i + 500);
          if (slice.length === 0) continue;
          let gone: string[];
          try {
            // Held only while still ours: what another consumer took meanwhile
            // is dropped, so that marking the buffer held below stays true.
            if (hold) {
              await this.host.holdOwned(name, slice);
              continue;
            }
            gone = await this.host.touch(this.host.control, name, -1, slice);
          } catch (err) {
            // The stream or the group is gone: the read path accounts for what
            // went with it (the read loop may be paused by full buffers).
            if (!isReplyError(err, 'NOGROUP')) throw err;
            await this.host.recover(name);
            break;
          }
          if (gone.length === 0) continue;
          // Trimmed while waiting in a buffer: taken out, so that what is
          // handled and what is reported lost never overlap. Those a
          // subscriber took meanwhile are its to ack (or nack, which reports them).
          const dropped = this.host.dropBuffered(name, gone);
          if (dropped.length > 0)
            await this.host.reportGone(key, dropped, 'events trimmed or deleted while waiting for a subscriber');
        }
      }
    }
    // Every event these buffered as the hold began is now held as of then.
    for (const sub of held) sub.markHeld(at);
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
        if (Date.now() >= this.#nextSweep) {
          this.#nextSweep = Date.now() + this.#sweepMs;
          // Keep-alive and cleanup every other sweep (counted once done: a failed one is retried as one).
          const found = await sweepStreams(this.host, {
            keepAlive: this.#sweeps % 2 === 0,
            leaseMs: this.#leaseMs,
            // Keep-alives come every other sweep: the keys outlive three of them.
            keepAliveFloorMs: 6 * this.#sweepMs,
            signal,
          });
          this.#sweeps++;
          for (const st of found) {
            if (signal.aborted) break;
            // From the sweep, the lease holder claims with no room too, to move dead letters.
            if ((await this.#claims.burst(st, this.#nextSweep, true)) === 'more') this.#wanted.add(st.stream.key);
          }
        }
        await this.#claimDue();
        await this.#claimWanted();
        if (Date.now() >= this.#nextAwait) {
          this.#nextAwait = Date.now() + this.#awaitMs;
          for (const s of [...this.host.streams()]) if (!s.ready && !signal.aborted) await this.#awaitStream(s);
        }
        backoff.reset();
      } catch (err) {
        const delay = backoff.next();
        retryAt = Date.now() + delay;
        // The sweep again after the backoff: it is what finds idle events and keeps this instance alive.
        this.#nextSweep = Math.min(this.#nextSweep, retryAt);
        if (!signal.aborted)
          this.host.logger.warn({ err: errorText(err), failures: backoff.failures, retryInMs: delay }, 'sweep failed, retrying');
      }
      await this.#sleepUntil(Math.max(retryAt, this.#nextWake()), signal);
    }
  }

  /** When the scheduler has something to do next. */
  #nextWake(): number {
    let at = this.#nextSweep;
    for (const t of this.#due.keys()) at = Math.min(at, t);
    if (this.#wanted.size > 0) at = Math.min(at, Date.now() + ROOM_POLL_MS);
    for (const s of this.host.streams()) if (!s.ready) at = Math.min(at, this.#nextAwait);
    return at;
  }

  /** Sleeps until `at`, or until `dueIn` needs an earlier wake-up, or the sink stops. */
  #sleepUntil(at: number, signal: AbortSignal): Promise<void> {
    const ms = at - Date.now();
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      // One timer and one abort listener at a time, however often nacks wake it.
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#wakeAt = Number.POSITIVE_INFINITY;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
      this.#wakeAt = at;
    });
  }

  /** The streams by key, as this instance reads them now. */
  #byKey(): Map<string, SinkStream> {
    const map = new Map<string, SinkStream>();
    for (const s of this.host.streams()) map.set(s.stream.key, s);
    return map;
  }

  /** Claims on the streams whose nacks came due. */
  async #claimDue(): Promise<void> {
    const now = Date.now();
    for (const [at, keys] of [...this.#due]) {
      if (at > now) continue;
      this.#due.delete(at);
      for (const key of keys) this.#wanted.add(key);
    }
  }

  /** Claims on every stream with idle events waiting, while there is room for them. */
  async #claimWanted(): Promise<void> {
    if (this.#wanted.size === 0 || this.host.settings.noAck) {
      this.#wanted.clear();
      return;
    }
    const { fanout, settings } = this.host;
    // Nothing to do until the buffers drained (checked again in ROOM_POLL_MS, no Redis command).
    if (fanout.room(settings.bufferSize + settings.maxPolled) < roomToClaim(settings)) return;
    const streams = this.#byKey();
    for (const key of [...this.#wanted]) {
      if (this.#abort.signal.aborted) return;
      const s = streams.get(key);
      if (!s?.ready) {
        this.#wanted.delete(key);
        continue;
      }
      const end = await this.#claims.burst(s, this.#nextSweep, false);
      if (end !== 'more') this.#wanted.delete(key);
      if (Date.now() >= this.#nextSweep) return;
    }
  }

  /** A stream whose key was gone (NOGROUP): once a producer recreates it, recreate the group at 0 and read it again. */
  async #awaitStream(s: SinkStream): Promise<void> {
    const keys = [s.stream.key, s.registry, s.keys.consumers];
    const ok = Number(await evalScript(this.host.control, recreateGroup, keys, [this.host.name, this.host.consumerName])) === 1;
    if (!ok) return;
    s.ready = true;
    s.checked = undefined;
    s.unverified = undefined;
    this.host.logger.warn({ stream: s.stream.name }, 'stream key is back: consumer group recreated at 0');
    await this.host.resume(s);
  }
}
