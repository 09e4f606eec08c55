/**
 * What a sink instance does with the events it holds: their idle times
 * (in progress, held in a buffer, given back by a nack), the ownership check
 * before a buffered event whose hold lapsed is handed out, and every loss it
 * finds among them, counted and reported in one place.
 */
import { type EventOwner, SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { Backoff, sleep } from './backoff.js';
import { type Connection, type Driver, evalScript } from './driver.js';
import type { Fanout } from './fanout.js';
import { groupGone } from './groupGone.js';
import { HeldGone } from './heldGone.js';
import { RunningEvents } from './heldHere.js';
import type { HolderWatch } from './holderWatch.js';
import { idsByStream } from './ids.js';
import { keepEventOwned } from './inProgress.js';
import { sinkKeys, streamKey, streamNameOf } from './keys.js';
import { heldAgain } from './letGo.js';
import type { LossReport } from './lossReport.js';
import { touchOrOneByOne } from './migratingWrites.js';
import { errorText, isReplyError } from './redisErrors.js';
import { eventInit, type RawEntry, str } from './replies.js';
import { reown, touch } from './scripts.js';
import { within } from './sinkLeave.js';
import { countVanished, lostByRedis, type VanishedHost } from './sinkRollback.js';
import type { SinkCounters, SinkStream } from './sinkState.js';
import type { Sent } from './stallClock.js';
import { reportStreamGone } from './streamGone.js';

/** What the holds need from their sink. */
export interface HoldsHost {
  readonly name: string;
  readonly consumerName: string;
  /** The sink's own connection, for its background work. */
  readonly control: Connection;
  readonly driver: Driver;
  readonly logger: Logger;
  readonly counters: SinkCounters;
  readonly fanout: Fanout<SinkEvent>;
  /** The sink's ack grace period (ms). */
  readonly graceMs: number;
  /** Aborts when the sink closes. */
  readonly closed: AbortSignal;
  /** The stream `name` or its group is missing: lets the read path find out and account for it now. */
  recover(name: string): Promise<void>;
  /** The sink's topic and filter, applied to every event before a subscriber sees it. */
  readonly matches: ((event: SinkEvent) => boolean) | undefined;
  readonly noAck: boolean;
  /** The sink that acks, nacks and keeps in progress the events it delivers. */
  readonly owner: EventOwner;
  /** When events read or claimed by a command sent as `sent` says are known held (see `StallClock.heldAt`). */
  heldAt(sent?: Sent): number;
  /** Where losses are reported: the user's logger, or process warnings without one. */
  readonly losses: LossReport;
  /** Where expiry losses left to another instance are watched (see `HolderWatch`); undefined before the sink is made. */
  holders(): HolderWatch | undefined;
  /** Whether event `id` of stream `name` may be one Redis lost in a rollback while this instance held it (see sinkRollback.ts). */
  rolledBack(name: string, id: string): boolean;
  /** Events `ids` of stream `name` were let go of unhandled, nacked or given back (see letGo.ts). */
  letGo(name: string, ids: readonly string[]): void;
  /** Events `ids` of stream `name` were counted lost (see `forgetIds` in letGo.ts). */
  counted(name: string, ids: readonly string[]): void;
  /** The IDs of stream `name` the sink acks now (see `SinkAcks.acking`): held here (heldHere.ts). */
  acking(name: string): Iterable<string>;
  /** Keeps events `ids` of stream `name` until a loss found covers them, then counts them with `count` (see `awaitRedisLoss`). */
  awaitRedisLoss(name: string, ids: readonly string[], how: string, count: (ids: readonly string[], why: string) => void): void;
}

export class SinkHolds {
  /** In-progress touches in flight (on the user's client): a nack waits for them, or one could land after it and undo its delay. */
  readonly #touching = new Set<Promise<unknown>>();
  /** Per stream, the report of its key found gone while it runs (see `streamGone`). */
  readonly #going = new Map<string, Promise<void>>();
  /** Per stream, the last entry of the estimate this instance left to the lease holder when its key went (see `groupGone`). */
  readonly #left = new Map<string, string>();

  /** Events kept in the delays set as deleted while handled: their entries go when acked (see heldGone.ts). */
  readonly heldGone: HeldGone;
  /** What the handlers of `process()` and `processBatch()` run now, and the acks: a claim of ours does not hand them out again. */
  readonly running: RunningEvents;

  constructor(private readonly host: HoldsHost) {
    this.heldGone = new HeldGone(host.name, host.driver, host.logger);
    this.running = new RunningEvents(host.acking);
  }

  /** Aborts when the sink closes: `process()` bounds its last acks by it (settle.ts). */
  get closed(): AbortSignal {
    return this.host.closed;
  }

  /** Resets the idle time of events whose handler runs (see `touch`), tracked so that a nack goes after it. */
  keepInProgress(conn: Connection, streamName: string, ids: string[]): Promise<string[]> {
    const p = this.touch(conn, streamName, 0, ids, undefined, this.host.graceMs);
    p.then(
      (gone) => this.heldGone.note(streamName, gone),
      () => {},
    );
    const tracked = p.catch(() => {}).finally(() => this.#touching.delete(tracked));
    this.#touching.add(tracked);
    return p;
  }

  /**
   * Sets the idle time of our own pending events of one stream (see the
   * `touch` script); with `nack`, gives them back, after `delayMs` when set.
   * Returns the IDs no longer in the stream.
   */
  async touch(
    conn: Connection,
    streamName: string,
    idleMs: number,
    ids: string[],
    nack?: { delayMs?: number },
    keepGoneMs?: number,
  ): Promise<string[]> {
    return (await this.touchAll(conn, streamName, idleMs, ids, nack, keepGoneMs)).gone;
  }

  /** As `touch`, also returning the IDs pending for no one and gone from the stream (see the `touch` script). */
  async touchAll(
    conn: Connection,
    streamName: string,
    idleMs: number,
    ids: string[],
    nack?: { delayMs?: number },
    keepGoneMs?: number,
  ): Promise<{ gone: string[]; vanished: string[]; mine: string[]; counts: number[] }> {
    if (nack) this.heldGone.forget(streamName, ids);
    const { name, consumerName } = this.host;
    const args = [name, consumerName, idleMs, nack ? '1' : '', nack?.delayMs ?? '', keepGoneMs ?? '', ...ids];
    const keys = { stream: streamKey(streamName), delays: sinkKeys(streamName, name).delays };
    const op = { nack: nack !== undefined, delayMs: nack?.delayMs, keepGoneMs };
    const reply = await touchOrOneByOne(conn, touch, keys, args, ids, op);
    return {
      gone: reply.gone.map(str),
      vanished: reply.vanished.map(str),
      mine: reply.mine.map(str),
      counts: reply.counts.map(Number),
    };
  }

  /**
   * Resolves once the in-progress touches in flight landed, or after `graceMs`: a handler's own
   * nack must not be undone by a touch of its event sent just before on another connection (a
   * touch queued on a client that lost Redis must not hold it: a later touch is moot).
   */
  async touchesLanded(graceMs: number): Promise<void> {
    if (this.#touching.size > 0) await within(Promise.all([...this.#touching]), graceMs);
  }

  /** See `SinkEvent.inProgress` and inProgress.ts. */
  inProgress(event: SinkEvent): Promise<void> {
    return keepEventOwned(this.host, this, event);
  }

  /**
   * The ownership check of buffered events whose hold may have lapsed: those
   * still ours are held again; those another consumer took, or that were
   * dead-lettered or reported lost meanwhile, are dropped from the buffers
   * (never handed out); those gone from the stream are reported lost.
   * Retries until it succeeds or the sink closes: handing out an unchecked
   * event could mean handling one that is no longer ours.
   */
  async recheck(items: readonly SinkEvent[]): Promise<void> {
    const backoff = new Backoff(50, 2000);
    for (const [name, ids] of idsByStream(items)) {
      for (let i = 0; i < ids.length; i += 500) {
        let slice = ids.slice(i, i + 500);
        while (!this.host.closed.aborted) {
          // Dropped meanwhile (the stream found gone): nothing left to check.
          slice = this.stillBuffered(name, slice);
          if (slice.length === 0) break;
          try {
            await this.holdOwned(name, slice);
            break;
          } catch (err) {
            // The stream or the group is gone: the read path accounts for what
            // went with it (its read loop may be paused by this full buffer).
            if (isReplyError(err, 'NOGROUP')) await this.host.recover(name).catch(() => {});
            const delay = backoff.next();
            this.host.logger.warn(
              { stream: name, err: errorText(err), retryInMs: delay },
              'ownership check of buffered events failed, retrying',
            );
            await sleep(delay, this.host.closed);
          }
        }
      }
    }
  }

  /**
   * Keeps buffered events of stream `name` from redelivery, as long as they
   * are still this consumer's: those another consumer took, or that were
   * dead-lettered or reported lost meanwhile, are dropped from the buffers
   * (never handed out); those gone from the stream are reported lost (those a
   * subscriber took meanwhile are its to settle: its ack makes them handled).
   */
  async holdOwned(name: string, ids: readonly string[]): Promise<void> {
    const [notOurs, gone, vanished] = (await evalScript(
      this.host.control,
      reown,
      [streamKey(name)],
      [this.host.name, this.host.consumerName, ...ids],
    )) as [unknown[], unknown[], unknown[]];
    // Gone with a rollback of Redis: this consumer holds their only copy;
    // kept and handed out (their ack does nothing). Else taken over.
    const lost = new Set(await lostByRedis(this.#vanishedHost, name, vanished.map(str)));
    const taken = this.dropBuffered(name, [...notOurs.map(str), ...vanished.map(str).filter((id) => !lost.has(id))]);
    if (taken.length > 0)
      this.host.logger.info(
        { stream: name, count: taken.length },
        'buffered events were taken over while this consumer stalled: dropped, not handed out',
      );
    const dropped = this.dropBuffered(name, gone.map(str));
    if (dropped.length > 0)
      await this.reportGone(streamKey(name), dropped, 'events trimmed or deleted while waiting for a subscriber');
  }

  /**
   * Events `ids` of stream `name` were nacked (see `HoldsHost.letGo`); those
   * the nack found `gone` or `vanished` are accounted for where it found them.
   */
  nacked(name: string, ids: readonly string[], gone: readonly string[], vanished: readonly string[]): void {
    const away = new Set([...gone, ...vanished]);
    const letGo = away.size === 0 ? ids : ids.filter((id) => !away.has(id));
    if (letGo.length > 0) this.host.letGo(name, letGo);
  }

  /**
   * Of events of stream `name` given back with a nack and found pending for
   * no one and gone from the stream (`vanished`), those Redis lost in a
   * rollback are counted lost (see `countVanished`).
   */
  lostOnNack(name: string, vanished: readonly string[]): Promise<void> {
    return this.lostVanished(name, vanished, 'given back (nack)');
  }

  /** Of `ids` (events of stream `name` pending for no one and gone from it), those Redis lost in a rollback (see `lostByRedis`). */
  lostByRedis(name: string, ids: readonly string[]): Promise<string[]> {
    return lostByRedis(this.#vanishedHost, name, ids);
  }

  /** See `countVanished` (`how`: how this instance let them go). */
  lostVanished(name: string, vanished: readonly string[], how: string): Promise<void> {
    return countVanished(this.#vanishedHost, name, vanished, how);
  }

  /** Events of stream `name` this instance let go of (`how`) and whose group was gone (NOGROUP): see groupGone.ts. */
  groupGone(name: string, ids: readonly string[], how: string): Promise<void> {
    return groupGone(
      {
        control: this.host.control,
        lostVanished: (n, v, h) => this.lostVanished(n, v, h),
        rolledBack: (n, id) => this.host.rolledBack(n, id),
        left: (n) => this.#left.get(n),
        awaitRedisLoss: (n, v, h) => this.host.awaitRedisLoss(n, v, h, (lost, why) => this.countLost(n, lost.length, why, lost)),
        maybeLost: (n, why) => this.maybeLost(n, why),
      },
      name,
      ids,
      how,
    );
  }

  /** What telling events Redis lost apart from those taken over needs. */
  get #vanishedHost(): VanishedHost {
    return {
      rolledBack: (name, id) => this.host.rolledBack(name, id),
      // A check that found the key gone may still be reporting it (`#going`): what it remembers is wanted here.
      recover: async (name) => {
        await this.host.recover(name);
        await this.#going.get(name);
      },
      countLost: (name, count, why, ids) => this.countLost(name, count, why, ids),
    };
  }

  /** The IDs of `ids` that still wait in a subscription buffer for stream `name`. */
  stillBuffered(name: string, ids: readonly string[]): string[] {
    const queued = new Set<string>();
    for (const sub of this.host.fanout.subs) for (const ev of sub.queued()) if (ev.streamName === name) queued.add(ev.id);
    return ids.filter((id) => queued.has(id));
  }

  /** Takes events of stream `name` out of every subscription buffer; returns the IDs that were in one. */
  dropBuffered(name: string, ids: readonly string[]): string[] {
    if (ids.length === 0) return [];
    const gone = new Set(ids);
    const dropped = new Set<string>();
    for (const sub of this.host.fanout.subs) {
      for (const ev of sub.drop((e) => gone.has(e.id) && e.streamName === name)) dropped.add(ev.id);
    }
    return [...dropped];
  }

  /** Entries gone from the stream before they were handled: reported lost and cleared from the pending list. */
  async reportGone(key: string, ids: string[], why: string): Promise<void> {
    this.countLost(streamNameOf(key) ?? key, ids.length, why, ids);
    await this.host.driver.send(['XACK', key, this.host.name, ...ids], key);
  }

  /**
   * The stream's key is gone under this sink (destroyed, expired; perhaps
   * already created anew by a producer). Its buffered events of the old
   * stream (IDs before `before`, the new stream's first entry; all when the
   * key is still gone) are dropped. After `destroy()`, the obituary says what
   * went with the stream for the whole sink (one instance takes it). After an
   * expiry nothing can say it exactly: the instance holding the lease counts
   * the group's unread and pending events as of its last check, less the
   * pending ones it acked since (see expiryLoss.ts): an estimate that may include
   * events other instances handled since (never fewer than were lost, unless
   * events were added after that check). The others leave it to that holder
   * and report it when it did not within a grace period (see holderWatch.ts).
   */
  streamGone(s: SinkStream, before: string | undefined): Promise<void> {
    const name = s.stream.name;
    const going = this.#streamGone(s, before).finally(() => {
      if (this.#going.get(name) === going) this.#going.delete(name);
    });
    this.#going.set(name, going);
    return going;
  }

  async #streamGone(s: SinkStream, before: string | undefined): Promise<void> {
    const left = await reportStreamGone({ host: this.host, holds: this }, s, before);
    if (left !== undefined) this.#left.set(s.stream.name, left);
  }

  /** Hands events to subscribers (read or claimed by a command sent as `sent` says); acks those the topic or filter rejects. */
  deliver(
    s: SinkStream,
    entries: readonly RawEntry[],
    counts: number | readonly number[],
    redelivery: boolean,
    sent?: Sent,
  ): void {
    const matches = this.host.matches;
    const rejected: string[] = [];
    const heldAt = this.host.heldAt(sent);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as RawEntry;
      heldAgain(s, entry[0]);
      const init = eventInit(s.stream.name, entry, typeof counts === 'number' ? counts : (counts[i] ?? 1), s.stream.codec);
      if (!init.complete)
        this.host.logger.warn({ stream: s.stream.name, id: entry[0] }, 'entry without n or p: delivered with defaults');
      const ev = new SinkEvent(init, this.host.name, this.host.owner);
      if (matches) {
        let ok: boolean;
        try {
          ok = matches(ev);
        } catch (err) {
          this.host.logger.error({ id: entry[0], err: errorText(err) }, 'filter threw: event treated as rejected');
          this.host.losses.filterThrew(entry[0], errorText(err));
          ok = false;
        }
        if (!ok) {
          rejected.push(entry[0]);
          continue;
        }
      }
      // A claimed event given back unseen by another instance (giveBack.ts) comes again as a first delivery.
      if (redelivery && (init.deliveryCount ?? 1) > 1) this.host.counters.redelivered++;
      else this.host.counters.delivered++;
      this.host.fanout.deliver(ev, heldAt);
    }
    if (rejected.length > 0) {
      this.host.counters.filtered += rejected.length;
      if (!this.host.noAck) {
        this.host.driver.send(['XACK', s.stream.key, this.host.name, ...rejected], s.stream.key).catch((err: unknown) => {
          // Left pending: the next reclaim filters and acks them again.
          this.host.logger.warn({ err: errorText(err), count: rejected.length }, 'ack of filtered events failed');
        });
      }
    }
  }

  /** Events of `stream` may be lost and how many is unknown: reported, never silent by default. */
  maybeLost(stream: string, why: string, ids?: readonly string[]): void {
    this.host.losses.unknown(ids && ids.length > 0 ? { stream, ids } : { stream }, why);
  }

  /** Every loss this instance finds goes through here: counted and reported. */
  countLost(stream: string, count: number, why: string, ids?: readonly string[]): void {
    // Counted here: a loss of Redis' that took them too must not say them again.
    if (ids) this.host.counted(stream, ids);
    this.host.counters.lost += count;
    this.host.losses.lost(count, ids ? { stream, ids } : { stream }, why);
  }
}
