/**
 * A sink's background work, on its own connection and timers so it never
 * waits on a subscriber: keep-alives, keeping buffered events from
 * redelivery, reclaiming idle events, moving dead letters, removing stale
 * consumers, and noticing a deleted stream key coming back.
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { Fanout } from '../subscription.js';
import { Backoff, sleep } from './backoff.js';
import { type Connection, type Driver, evalScript, type OwnedConnection } from './driver.js';
import { streamKey } from './keys.js';
import { errorText, isReplyError } from './redisErrors.js';
import { buf, entries, type RawEntry, str } from './replies.js';
import { claim, keepAlive, lease, recreateGroup, removeStale } from './scripts.js';
import type { SinkCounters, SinkSettings, SinkStream } from './sinkState.js';

/** What the background work needs from its sink. */
export interface MaintenanceHost {
  readonly name: string;
  readonly consumerName: string;
  readonly settings: SinkSettings;
  readonly control: OwnedConnection;
  readonly driver: Driver;
  readonly logger: Logger;
  readonly counters: SinkCounters;
  readonly fanout: Fanout<SinkEvent>;
  streams(): Iterable<SinkStream>;
  /** Hands entries to subscribers; `counts` is their delivery count, one for all or one each. */
  deliver(s: SinkStream, entries: readonly RawEntry[], counts: number | readonly number[], redelivery: boolean): void;
  /** Sets the idle time of our own pending events of stream `name`; returns those gone from the stream. */
  touch(conn: Connection, name: string, idleMs: number, ids: string[]): Promise<string[]>;
  reportGone(key: string, ids: string[], why: string): Promise<void>;
  /** The IDs of `ids` that still wait in a subscription buffer for stream `name`. */
  stillBuffered(name: string, ids: readonly string[]): string[];
  /** Holds buffered events of stream `name` that are still ours, drops the others (see `SinkHolds.holdOwned`). */
  holdOwned(name: string, ids: readonly string[]): Promise<void>;
  /** Takes events of stream `name` out of every subscription buffer; returns the IDs that were in one. */
  dropBuffered(name: string, ids: readonly string[]): string[];
  /** Counts and reports events of stream `name` found lost. */
  countLost(name: string, count: number, why: string, ids?: readonly string[]): void;
  /** Reads a stream again once its key is back. */
  resume(s: SinkStream): Promise<void>;
  /** The stream `name` or its group is missing: lets the read path find out and account for it now. */
  recover(name: string): Promise<void>;
  /** Counts what blocking reads may have jumped over since the last trim check. */
  verifyReads(): Promise<void>;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

export class SinkMaintenance {
  readonly #abort = new AbortController();
  readonly #loops: Promise<void>[];
  readonly #keepAliveMs: number;
  readonly #reclaimMs: number;
  /** Last tick of the beat timer, and the longest gap between ticks that is not a stall. */
  #beat = Date.now();
  /** The last gap in the beats: when it began, and until when reads may carry replies from before it. */
  #stall: { before: number; until: number } | undefined;
  readonly #beatMs: number;
  readonly #beatTimer: NodeJS.Timeout;

  constructor(private readonly host: MaintenanceHost) {
    this.#keepAliveMs = clamp(Math.floor(host.settings.graceMs / 4), 10, 5000);
    this.#reclaimMs = clamp(Math.floor(host.settings.graceMs / 4), 10, 500);
    this.#beatMs = clamp(Math.floor(host.settings.graceMs / 8), 5, 1000);
    this.#beatTimer = setInterval(() => {
      const now = Date.now();
      // A gap in the beats: the process was frozen or its event loop blocked.
      // A read reply may have waited through it in the socket, and reach the
      // buffers after this beat: until the grace period has passed, what is
      // read counts as held since before the gap.
      if (now - this.#beat > 4 * this.#beatMs) this.#stall = { before: this.#beat, until: now + host.settings.graceMs };
      this.#beat = now;
    }, this.#beatMs).unref();
    this.#loops = [this.#keepAliveLoop(), this.#reclaimLoop()];
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

  /** Liveness, on its own timer and connection, never behind a slow subscriber. */
  async #keepAliveLoop(): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = new Backoff(100, 2000);
    while (!signal.aborted) {
      let delay = this.#keepAliveMs;
      try {
        await Promise.all(
          [...this.host.streams()].map((s) =>
            evalScript(
              this.host.control,
              keepAlive,
              [s.keys.consumers, s.stream.key, s.registry],
              [this.host.consumerName, this.host.name, 3 * this.#keepAliveMs],
            ),
          ),
        );
        if (backoff.failures > 0) this.host.logger.info({ failures: backoff.failures }, 'keep-alive recovered');
        backoff.reset();
        await this.#holdBuffered();
        await this.host.verifyReads();
      } catch (err) {
        delay = Math.max(delay, backoff.next());
        if (!signal.aborted)
          this.host.logger.warn(
            { err: errorText(err), failures: backoff.failures, retryInMs: delay },
            'keep-alive failed, retrying',
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
   * Claiming idle events (every instance with room: the claim script is
   * atomic), dead letters and stale consumers (the lease holder, room or
   * not), and noticing a deleted stream key coming back.
   */
  async #reclaimLoop(): Promise<void> {
    const signal = this.#abort.signal;
    const leaseMs = Math.max(3 * this.#reclaimMs, 200);
    let lastCleanup = 0;
    const backoff = new Backoff(100, 2000);
    while (!signal.aborted) {
      let delay = this.#reclaimMs;
      try {
        const cleanup = Date.now() - lastCleanup >= this.#keepAliveMs;
        if (cleanup) lastCleanup = Date.now();
        for (const s of [...this.host.streams()]) {
          if (signal.aborted) break;
          if (!s.ready) {
            await this.#awaitStream(s);
            continue;
          }
          await this.#reclaimStream(s, leaseMs, cleanup);
        }
        backoff.reset();
      } catch (err) {
        delay = Math.max(delay, backoff.next());
        if (!signal.aborted)
          this.host.logger.warn(
            { err: errorText(err), failures: backoff.failures, retryInMs: delay },
            'reclaim failed, retrying',
          );
      }
      await sleep(delay, signal);
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

  async #reclaimStream(s: SinkStream, leaseMs: number, cleanup: boolean): Promise<void> {
    // The lease holder cleans up stale consumers and moves dead letters even
    // when it has no room; every instance with room also claims idle events
    // (the claim script is atomic, so two claimers never take the same event).
    const leaseKeys = [s.keys.lease, s.stream.key];
    s.leaseHeld = Number(await evalScript(this.host.control, lease, leaseKeys, [this.host.consumerName, leaseMs, '0'])) === 1;
    if (s.leaseHeld && cleanup) {
      const removed = (await evalScript(
        this.host.control,
        removeStale,
        [s.stream.key, s.keys.consumers],
        [this.host.name, this.host.consumerName, 2 * this.host.settings.graceMs],
      )) as unknown[];
      if (removed.length > 0)
        this.host.logger.info({ stream: s.stream.name, consumers: removed.map(str) }, 'removed stale consumers');
    }
    if (this.host.settings.noAck) return;
    // Orphaned events compete with new ones for buffer room: the read loop
    // only reads while a buffer holds fewer than bufferSize, so claiming up to
    // the hard bound bufferSize + maxPolled lets them in even when every
    // consumer is saturated, and the bound still holds.
    const { bufferSize, maxPolled } = this.host.settings;
    const room = Math.min(maxPolled, 1000, this.host.fanout.room(bufferSize + maxPolled));
    if (room === 0 && !s.leaseHeld) return;
    const inline = !this.host.driver.isCluster || s.deadKey === s.stream.key;
    let reply: unknown[];
    try {
      reply = (await evalScript(
        this.host.control,
        claim,
        [s.stream.key, inline ? s.deadKey : s.stream.key, s.keys.delays],
        [
          this.host.name,
          this.host.consumerName,
          this.host.settings.graceMs,
          Math.min(this.host.settings.maxPolled, 1000),
          this.host.settings.maxDeliveries ?? 0,
          inline ? '1' : '0',
          this.host.name,
          s.stream.name,
          room,
        ],
      )) as unknown[];
    } catch (err) {
      if (isReplyError(err, 'NOGROUP')) return; // the read loop recovers the group
      throw err;
    }
    const [claimed, lost, dead, toMove] = reply as [unknown[], unknown[], unknown[], unknown[]];
    if (lost.length > 0) {
      this.host.dropBuffered(s.stream.name, lost.map(str));
      this.host.countLost(s.stream.name, lost.length, 'events trimmed or deleted before they were acked', lost.map(str));
    }
    if (dead.length > 0) {
      // This instance may still buffer some (given back by a stalled subscriber): never hand them out now.
      this.host.dropBuffered(s.stream.name, dead.map(str));
      this.host.counters.deadLettered += dead.length;
      this.host.logger.warn(
        { stream: s.stream.name, ids: dead.map(str), deadLetterStream: s.deadName },
        'events dead-lettered after max deliveries',
      );
    }
    if (toMove.length > 0) {
      this.host.dropBuffered(
        s.stream.name,
        toMove.map((m) => str((m as unknown[])[0])),
      );
      await this.#moveDeadLetters(s, toMove);
    }
    if (claimed.length > 0) {
      const entries: RawEntry[] = [];
      const counts: number[] = [];
      for (const c of claimed) {
        const [id, fields, count] = c as [unknown, unknown, unknown];
        entries.push([str(id), Array.isArray(fields) ? fields.map(buf) : []]);
        counts.push(Number(count));
      }
      // A copy still buffered here (given back by a stalled subscriber) is superseded by the claimed one.
      this.host.dropBuffered(
        s.stream.name,
        entries.map((e) => e[0]),
      );
      this.host.deliver(s, entries, counts, true);
    }
  }

  /** Cluster: the dead-letter stream may live on another node. Add first, then ack: never in neither. */
  async #moveDeadLetters(s: SinkStream, toMove: unknown[]): Promise<void> {
    const driver = this.host.driver;
    for (const m of toMove) {
      const [rawId, n] = m as [unknown, unknown];
      const id = str(rawId);
      const found = entries(await driver.send(['XRANGE', s.stream.key, id, id], s.stream.key));
      const entry = found[0];
      if (entry) {
        await driver.send(
          [
            'XADD',
            s.deadKey,
            '*',
            ...entry[1],
            'source_stream',
            s.stream.name,
            'source_sink',
            this.host.name,
            'source_id',
            id,
            'deliveries',
            String(n),
            'reason',
            'max deliveries reached',
          ],
          s.deadKey,
        );
        this.host.counters.deadLettered++;
      } else {
        this.host.countLost(s.stream.name, 1, 'event trimmed or deleted before it could be dead-lettered', [id]);
      }
      await driver.send(['XACK', s.stream.key, this.host.name, id], s.stream.key);
    }
  }
}
