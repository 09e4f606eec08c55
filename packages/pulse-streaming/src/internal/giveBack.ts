/**
 * Giving back events a sink read but never handed to a subscriber: a
 * `break` out of a `for await` loop, an aborted `process()`, `close()`, or a
 * read that returned after the last subscriber left. They stay pending with
 * their idle time untouched, so they go to another consumer after the grace
 * period as before (API.md, `close()`), but their delivery count goes back
 * to what it was before the read: no code saw them, so the read must not
 * count toward `maxDeliveries` (with `maxDeliveries: 1` every such event was
 * dead-lettered unseen) nor show as a redelivery.
 *
 * And taking them back: a subscriber of the same instance that is there, or
 * comes, within the grace period (a `process()` started again after an
 * abort, a `for await` loop after a `break`, a second subscription) gets
 * them at once, oldest first, instead of a grace period later and after
 * newer events; only those still pending for this consumer with the count
 * they were given back with.
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { Subscription } from '../subscription.js';
import { Backoff, sleep } from './backoff.js';
import { monotonicNow } from './clock.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { giveBackScript, takeBackScript } from './giveBackScripts.js';
import { streamKey } from './keys.js';
import { errorText, isReplyError } from './redisErrors.js';
import { countedEntries, type RawEntry, str } from './replies.js';
import type { SinkHolds } from './sinkHolds.js';
import type { SinkStream } from './sinkState.js';
import type { Sent } from './stallClock.js';

/** Where events taken back go: the sink's subscribers. */
export interface TakeBackTarget {
  /** How many events the subscribers can take in now: 0 while none took or waited for one within the grace period (see `claimRoom`). */
  room(): number;
  /** Whether the sink reads stream `name` now (not removed, its group there). */
  reads(name: string): boolean;
  /** Hands events of stream `name` taken back by a command sent as `sent` says; false when the sink no longer reads it (they wait for a claim). */
  deliver(name: string, entries: readonly RawEntry[], counts: readonly number[], sent: Sent): boolean;
}

/** The parts of a sink that taking back uses, there once the sink is built. */
export interface TakeBackParts {
  /** By stream key. */
  readonly streams: ReadonlyMap<string, SinkStream>;
  readonly holds: Pick<SinkHolds, 'deliver'>;
  readonly readAhead: { readonly ahead: number };
}

/** What giving back needs of the sink. */
export interface GiveBackHost {
  readonly name: string;
  readonly consumerName: string;
  /** The connection that also carries the holds of buffered events: a hold sent before a give-back runs before it. */
  readonly control: OwnedConnection;
  /** Aborts when the sink closes or fails: what would retry stops. */
  readonly closed: AbortSignal;
  /** Counted when read; what is given back was never handed out, so it is counted out again. */
  readonly counters: { delivered: number; redelivered: number };
  readonly logger: Logger;
  /** The subscriptions still there: what one of them still has buffered is not given back. */
  subs(): Iterable<Subscription<SinkEvent>>;
  /**
   * Events of stream `name` dropped from a buffer that are pending for no one
   * and gone from the stream: those Redis lost in a rollback are counted lost
   * (see `SinkHolds.lostVanished`).
   */
  vanished(name: string, ids: readonly string[]): Promise<void>;
  /**
   * Events `ids` of stream `name` given or taken back met their group gone
   * (NOGROUP): those Redis lost are counted, now or when the read path finds
   * the loss (see `SinkHolds.groupGone`).
   */
  groupGone(name: string, ids: readonly string[]): Promise<void>;
  /**
   * The stream `name` or its group is missing (NOGROUP): runs the stream's
   * check (`SinkReads.recover`) unless the read path reads (it finds out): it
   * reports what went with a gone key (a destroy's obituary) or remakes a
   * group destroyed on a living key. Without it, a destroy under an instance
   * with no subscriber (the read loop reads nothing then) went unreported.
   */
  recover(name: string): Promise<void>;
  /** Events `ids` of stream `name` were given back (see letGo.ts). */
  letGo(name: string, ids: readonly string[]): void;
}

/** At most this many events per script call. */
const CHUNK = 500;

/** At most this many events given back are remembered for taking back (more than any sink's buffers hold by default). */
const REMEMBERED = 10_000;

export class GiveBack {
  readonly #pending = new Set<Promise<void>>();
  /** Dropped this tick, by stream: a read reply that came with no subscriber drops its events one by one. */
  #queued = new Map<string, SinkEvent[]>();
  /** Given back, by stream: id -> the count it was given back with and when (ms); kept a grace period for a subscriber of this instance. */
  readonly #given = new Map<string, Map<string, { readonly count: number; readonly at: number }>>();
  #remembered = 0;
  #taking = false;

  constructor(
    private readonly host: GiveBackHost,
    private readonly graceMs: number,
    private readonly target: TakeBackTarget,
  ) {}

  /**
   * Events dropped from a buffer (see `Fanout`): gives back those no
   * subscription took and none still holds, in one call per stream and tick
   * (at most CHUNK events each). Not awaited by the caller; see `settled`.
   */
  dropped(items: readonly SinkEvent[]): void {
    const held = new Set<SinkEvent>();
    // A copy of the event a stuck loop holds, claimed again by this instance (nothing keeps a
    // `for await` loop's event in progress): its handler settles it. Given back, it was said let go
    // of, or counted lost in a rollback, while the handler went on to ack it (outside review Z).
    const inHand = new Map<string, string>();
    for (const sub of this.host.subs()) {
      for (const ev of sub.queued()) held.add(ev);
      const last = sub.lastTaken;
      if (last !== undefined && !last.settled) inHand.set(last.id, last.streamName);
    }
    const first = this.#queued.size === 0;
    for (const ev of items) {
      if (ev.taken || ev.settled || held.has(ev) || inHand.get(ev.id) === ev.streamName) continue;
      const list = this.#queued.get(ev.streamName) ?? [];
      list.push(ev);
      this.#queued.set(ev.streamName, list);
    }
    if (first && this.#queued.size > 0) {
      const p = Promise.resolve()
        .then(() => this.#flush())
        .finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  /** Resolves once every give-back dropped so far is done (failures are logged). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #flush(): Promise<void> {
    const queued = this.#queued;
    this.#queued = new Map();
    const sent: Array<Promise<void>> = [];
    for (const [name, events] of queued)
      for (let i = 0; i < events.length; i += CHUNK) sent.push(this.#send(name, events.slice(i, i + CHUNK)));
    await Promise.all(sent);
    await this.#takeBack();
  }

  /**
   * A subscriber may take events given back: a new subscription, or one
   * still there as others were given back (not awaited; `settled` covers it).
   */
  resume(): void {
    if (this.#remembered === 0 || this.#taking) return;
    const p = this.#takeBack().finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /**
   * Takes back what was given back, oldest first per stream, while the
   * subscribers have room; what is older than a grace period, or finds no
   * room, is left to the claims of any instance, as before.
   */
  async #takeBack(): Promise<void> {
    if (this.#taking) return;
    this.#taking = true;
    try {
      for (;;) {
        const room = Math.min(CHUNK, this.target.room());
        if (room === 0 || this.#remembered === 0) return;
        const [name, ids] = this.#given.entries().next().value as [string, Map<string, { count: number; at: number }>];
        const since = monotonicNow() - this.graceMs;
        const args: Array<string | number> = [this.host.name, this.host.consumerName];
        for (const [id, g] of ids) {
          if (args.length >= 2 + 2 * room) break;
          ids.delete(id);
          this.#remembered--;
          if (g.at >= since) args.push(id, g.count);
        }
        if (ids.size === 0) this.#given.delete(name);
        // A stream removed or gone meanwhile: its events wait for the claim path, which accounts for them.
        if (args.length > 2 && this.target.reads(name)) await this.#take(name, args);
      }
    } finally {
      this.#taking = false;
    }
  }

  async #take(name: string, args: Array<string | number>): Promise<void> {
    const sent = { at: monotonicNow(), waits: false };
    let reply: unknown[];
    try {
      reply = (await evalScript(this.host.control, takeBackScript, [streamKey(name)], args)) as unknown[];
    } catch (err) {
      // Gone with their group: they never come; the stream's check reports what went with a gone key.
      if (isReplyError(err, 'NOGROUP')) {
        const ids = args.slice(2).filter((_, i) => i % 2 === 0);
        await this.#groupGone(name, ids.map(String), err);
        return;
      }
      // Nothing is lost: they stay pending and go to a consumer after the grace period. If the
      // script ran and only its reply was lost (the connection dropped), they come counted once
      // more, as after a read reply lost with the connection. Not undone: whether it ran is not
      // known, and an undo after one of this instance's claims had handed them out would lower
      // the count of a delivery that reached code.
      this.host.logger.warn(
        { stream: name, count: (args.length - 2) / 2, err: errorText(err) },
        'could not take back events given back: they come after the grace period',
      );
      return;
    }
    if (reply.length === 0) return;
    const { got, counts } = countedEntries(reply);
    // Handed out like claimed events (a subscriber gone meanwhile gives them back again).
    if (this.target.deliver(name, got, counts, sent)) {
      this.host.logger.debug({ stream: name, count: got.length }, 'events given back taken back by a subscriber');
      return;
    }
    // The stream left the sink meanwhile (removeStream): nobody will hand them out here. Given
    // back again at once: the take-back set their idle time to 0, so no claim of this instance
    // can have taken them within half a grace period of sending it.
    await this.#undo(
      name,
      got.flatMap((e, i) => [e[0], counts[i] as number]),
      sent.at + this.graceMs / 2,
    );
  }

  /**
   * Gives back again `pairs` (id, the count a take-back set) of stream
   * `name`: retried while the connection is away, until `deadline` (ms) or
   * the sink closes (then they come back after the grace period counted
   * once more, said).
   */
  async #undo(name: string, pairs: ReadonlyArray<string | number>, deadline: number): Promise<void> {
    for (let delay = 50; !this.host.closed.aborted; delay *= 2) {
      try {
        await evalScript(
          this.host.control,
          giveBackScript,
          [streamKey(name)],
          [this.host.name, this.host.consumerName, ...pairs],
        );
        return;
      } catch (err) {
        if (monotonicNow() + delay > deadline || this.host.closed.aborted) {
          this.host.logger.warn(
            { stream: name, count: pairs.length / 2, err: errorText(err) },
            'could not give back events taken back: they come back with their delivery count raised',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Events `ids` of stream `name` met NOGROUP (`err`) as they were given or
   * taken back: runs the stream's check (see `GiveBackHost.recover`), then
   * counts those Redis lost with their key (see `GiveBackHost.groupGone`:
   * also when the check found nothing yet and the read path finds it later).
   * Returns whether it ran; a check that failed is said (a give-back tries
   * again while the sink is open).
   */
  async #groupGone(name: string, ids: readonly string[], err: unknown): Promise<boolean> {
    const count = ids.length;
    try {
      await this.host.recover(name);
      // Those Redis lost with their key (expired, deleted, restarted empty) or in a rollback: counted lost.
      await this.host.groupGone(name, ids);
    } catch (checkErr) {
      this.host.logger.warn(
        { stream: name, count, err: errorText(err), checkErr: errorText(checkErr) },
        'events never handed out met their stream or group gone, and the check that reports what went with it failed',
      );
      return false;
    }
    this.host.logger.debug({ stream: name, count, err: errorText(err) }, 'events never handed out went with their group');
    return true;
  }

  /**
   * `delivered` counts events read for the first time and handed to subscribers: the read counted
   * these, none was handed out, and whoever takes them next (a take-back, a claim here or
   * elsewhere) counts them then. Without this an event handed out once counted twice.
   */
  #uncount(ids: readonly string[], events: readonly SinkEvent[]): void {
    const given = new Set(ids);
    const counters = this.host.counters;
    for (const ev of events) {
      if (!given.has(ev.id)) continue;
      if (ev.deliveryCount > 1) counters.redelivered--;
      else counters.delivered--;
    }
  }

  /** Remembers events of stream `name` given back (`ids`, of `events`), with the count they now have, up to REMEMBERED. */
  #remember(name: string, ids: readonly string[], events: readonly SinkEvent[]): void {
    const given = new Set(ids);
    const at = monotonicNow();
    const byId = this.#given.get(name) ?? new Map<string, { count: number; at: number }>();
    for (const ev of events) {
      if (this.#remembered >= REMEMBERED) break;
      if (!given.has(ev.id) || byId.has(ev.id)) continue;
      byId.set(ev.id, { count: ev.deliveryCount - 1, at });
      this.#remembered++;
    }
    if (byId.size > 0) this.#given.set(name, byId);
  }

  /**
   * Gives back `events` of stream `name`, retried while Redis is away until
   * it answers or the sink closes: only its answer tells events still
   * pending (they come back) from events Redis lost in a rollback while this
   * instance held them (counted lost). One failed give-back once said they
   * come back: after a slow restart from an older snapshot nothing did, and
   * nothing was counted.
   */
  async #send(name: string, events: readonly SinkEvent[]): Promise<void> {
    const { control, consumerName, logger, closed } = this.host;
    const args: Array<string | number> = [this.host.name, consumerName];
    for (const ev of events) args.push(ev.id, ev.deliveryCount);
    const backoff = new Backoff(50, 5000);
    for (;;) {
      try {
        const [given, vanished] = (await evalScript(control, giveBackScript, [streamKey(name)], args)) as [unknown[], unknown[]];
        // Redis rolled back under them: nothing can give them back or redeliver them.
        if (vanished.length > 0) await this.host.vanished(name, vanished.map(str));
        if (backoff.failures > 0)
          logger.info({ stream: name, count: events.length }, 'events never handed out given back after a retry');
        if (given.length > 0) {
          logger.debug({ stream: name, count: given.length }, 'events never handed out given back, delivery count restored');
          const ids = given.map(str);
          this.#uncount(ids, events);
          this.#remember(name, ids, events);
          this.host.letGo(name, ids);
        }
        return;
      } catch (err) {
        // Their group is gone with the pending entries a give-back restores: retrying cannot help.
        // The stream's check reports what went with a gone key (a destroy's obituary counts these,
        // pending), or makes a group destroyed on a living key again at 0 (they come again).
        const noGroup = isReplyError(err, 'NOGROUP');
        if (
          noGroup &&
          (await this.#groupGone(
            name,
            events.map((ev) => ev.id),
            err,
          ))
        )
          return;
        if (closed.aborted) {
          // Gone with their group, and the check failed (said): they do not come back.
          if (noGroup) return;
          // Most likely they stay pending and come back after the grace period, counted as delivered
          // once more; if Redis lost them in a rollback, no one can tell any more.
          logger.warn(
            { stream: name, count: events.length, err: errorText(err) },
            'could not give back events never handed out before the sink closed: they come back after the grace period with their delivery count raised, unless Redis lost them in a rollback',
          );
          return;
        }
        if (backoff.failures === 0)
          logger.warn(
            { stream: name, count: events.length, err: errorText(err) },
            'could not give back events never handed out, retrying',
          );
        await sleep(backoff.next(), closed);
      }
    }
  }
}
