/**
 * The subscriptions of one reader or sink instance, and how what it reads
 * is handed to them.
 */
import { InvalidArgumentError } from '../errors.js';
import { Subscription } from '../subscription.js';
import { checkSignal } from './validate.js';

/** How a {@link Fanout} hands out what it gets. */
export interface FanoutOptions<T> {
  /**
   * Each item goes to one subscription, not to every one: a sink's
   * subscriptions share its events (two `process()` calls on one instance
   * split the work, as two instances do), a reader's each get all of them.
   */
  readonly share?: boolean;
  /**
   * Told of the items a subscription had buffered as it ends (after it left
   * `subs`), of items delivered while there is none, and, when sharing, of
   * items for which every subscription is stalled.
   */
  readonly onDropped?: (items: T[]) => void;
  /** Told when a subscription is added, and when a stalled one asks for an event again. */
  readonly onAdded?: () => void;
  /**
   * When sharing, the most a subscription buffers (default: no bound beyond
   * the reads'): reads sized for several subscriptions may land when one of
   * them has left; what would pass the bound is dropped instead (given back).
   */
  readonly limit?: number;
  /** When sharing: told when a subscription's buffer empties or stops being full (what was given back may be taken back). */
  readonly onRoom?: () => void;
  /**
   * When sharing: an item for a subscription at `limit` is buffered past it
   * rather than dropped (a `noAck` sink: its events were acked as read, and
   * dropped they are lost). Dropped only when no subscription is there.
   */
  readonly keepOverLimit?: boolean;
}

/** @internal The set of subscriptions of one reader or sink instance. */
export class Fanout<T> {
  readonly subs = new Set<Subscription<T>>();
  /** The subscription when there is exactly one (see `#handOne`). */
  #only: Subscription<T> | undefined;
  /** Every subscription handed out: `unsubscribe` tells them from a mistake (another reader's, a plain object). */
  readonly #issued = new WeakSet<object>();
  /** Who waits in `changed()`. */
  readonly #waiting = new Set<() => void>();
  readonly #share: boolean;
  readonly #onDropped: ((items: T[]) => void) | undefined;
  readonly #onAdded: (() => void) | undefined;
  readonly #limit: number;
  readonly #onRoom: (() => void) | undefined;
  readonly #keepOverLimit: boolean;

  constructor(
    private readonly capacity: number,
    options: FanoutOptions<T> = {},
  ) {
    this.#share = options.share === true;
    this.#onDropped = options.onDropped;
    this.#onAdded = options.onAdded;
    this.#limit = options.limit ?? Number.POSITIVE_INFINITY;
    this.#onRoom = options.onRoom;
    this.#keepOverLimit = options.keepOverLimit === true;
  }

  add(signal?: AbortSignal): Subscription<T> {
    // Checked here for readers and sinks alike: a bad one would throw a TypeError later.
    checkSignal('signal', signal);
    const sub = new Subscription<T>(
      this.capacity,
      {
        onDrain: () => {
          this.#notify();
          this.#onRoom?.();
        },
        onReturn: (s) => this.remove(s),
        onWake: () => {
          this.#drainStalled();
          this.#notify();
          this.#onAdded?.();
        },
        onHungry: this.#share ? (s) => this.#steal(s) : undefined,
      },
      signal,
    );
    this.subs.add(sub);
    this.#only = this.subs.size === 1 ? sub : undefined;
    this.#issued.add(sub);
    this.#drainStalled();
    this.#notify();
    this.#onAdded?.();
    return sub;
  }

  /**
   * The user's `unsubscribe`: ends `sub` (idempotent) when this fanout
   * handed it out; anything else is a mistake that doing nothing would hide
   * (the real subscription would go on reading).
   */
  unsubscribe(sub: unknown, owner: string): void {
    if (typeof sub !== 'object' || sub === null || !this.#issued.has(sub)) {
      throw new InvalidArgumentError(`unsubscribe takes a subscription of this ${owner} (from its subscribe())`);
    }
    this.remove(sub as Subscription<T>);
  }

  remove(sub: Subscription<T>): void {
    if (!this.subs.delete(sub)) return;
    this.#only = this.subs.size === 1 ? [...this.subs][0] : undefined;
    const dropped = sub.size > 0 ? sub.queued() : undefined;
    sub.end();
    if (dropped && this.#onDropped) this.#onDropped(dropped as T[]);
    // A noAck sink's events were acked as read: nothing can give them back, a sibling takes them (past the bound if it must).
    else if (dropped && this.#share) for (const item of dropped) this.#handOne(item, 0, true);
    this.#notify();
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
  }

  /**
   * Hands `item` to every subscription, or when sharing to one (see
   * `#handOne`); `heldAt`: see `Subscription.push`.
   */
  deliver(item: T, heldAt = 0): void {
    if (this.#share) this.#handOne(item, heldAt);
    else {
      if (this.subs.size === 0) this.#onDropped?.([item]);
      for (const s of this.subs) s.push(item, heldAt);
    }
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
  }

  /**
   * To the first subscription waiting for an event, else to the one with the
   * fewest buffered; never to a stalled one while another is not. When every
   * one is stalled (the sink reads nothing then, see `ready()`: what comes is
   * a read that was out as they stalled) the item is dropped (given back),
   * but for a `noAck` sink (`keepOverLimit`), whose events were acked as read:
   * buffered in a stalled one. Buffered there, it was held by no one: the
   * sink's claim took it back after the grace period with its count raised
   * (dead-lettered unseen under `maxDeliveries: 1`). When the one chosen is at `limit`,
   * the item is dropped (a sink gives it back, to be taken back when there is
   * room, or to go to another instance); with `keepOverLimit` it is buffered anyway.
   */
  #handOne(item: T, heldAt: number, force = false): void {
    // The common case, one subscription taking events: no iteration (measured on the read path).
    const only = this.#only;
    if (only !== undefined && !only.ended && !only.stalled && only.size < this.#limit) {
      only.push(item, heldAt);
      return;
    }
    let best: Subscription<T> | undefined;
    for (const s of this.subs) {
      if (s.ended) continue;
      if (!s.stalled && s.waiting) {
        best = s;
        break;
      }
      if (best === undefined || (best.stalled && !s.stalled) || (best.stalled === s.stalled && s.size < best.size)) best = s;
    }
    const keep = this.#keepOverLimit || !this.#onDropped;
    if (best === undefined || (!keep && (best.stalled || best.size >= this.#limit))) this.#onDropped?.([item]);
    else if (best.size >= this.#limit && !force) {
      // noAck, every live one at its bound: to the least full of all, stalled ones too, rather than past the bound.
      let least = best;
      for (const s of this.subs) if (!s.ended && s.size < least.size) least = s;
      least.push(item, heldAt);
    } else best.push(item, heldAt);
  }

  /**
   * When sharing, a subscription about to wait with an empty buffer takes
   * the older half of what the sibling with the most buffered holds (at
   * least one): a `process()` whose handlers are all busy, or a `for await`
   * loop in its body, does not keep events from a sibling that could run
   * them now.
   */
  #steal(hungry: Subscription<T>): void {
    let from: Subscription<T> | undefined;
    for (const s of this.subs) if (s !== hungry && !s.ended && s.size > (from?.size ?? 0)) from = s;
    if (from === undefined) return;
    const { items, heldAt } = from.takeOldest(Math.ceil(from.size / 2));
    for (const item of items) hungry.push(item, heldAt);
  }

  /**
   * When sharing: the subscriptions that neither took nor waited for an
   * event since `activeSince` (a `for await` loop stuck in its body, a
   * subscription never iterated) are marked stalled, and what they buffered
   * goes to the others (or is dropped, see `#handOne`) instead of waiting
   * there. A stalled one gets nothing more until it asks again. Returns how
   * many items were taken out.
   */
  releaseStalled(activeSince: number): number {
    if (!this.#share) return 0;
    let released = 0;
    for (const s of [...this.subs]) {
      if (s.ended || s.stalled || s.lastActivity >= activeSince) continue;
      s.stall();
      // With no live sibling (`#drainStalled` moves them to one), given back; a noAck sink's
      // events were acked as read: kept for the loop, nothing else can take them.
      if (this.#live() || !this.#onDropped || s.size === 0) continue;
      const { items } = s.takeOldest(s.size);
      released += items.length;
      this.#onDropped(items);
    }
    released += this.#drainStalled();
    if (released > 0) this.#notify();
    // Every one stalled: no more reads (`ready()`), and a read that may block long ends now.
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
    return released;
  }

  /**
   * When sharing and a subscription takes events: what stalled ones hold
   * (what they buffered as they stalled, or read while every one was
   * stalled) goes to it, at once (as one is added or wakes, and at every
   * hold tick): nothing holds events in a stalled buffer, and another
   * consumer would claim them with their count raised. Handed as held long
   * ago: checked with Redis before one is handed out (`Subscription.push`).
   * Returns how many moved.
   */
  #drainStalled(): number {
    if (!this.#share || !this.#live()) return 0;
    let moved = 0;
    for (const s of [...this.subs]) {
      if (s.ended || !s.stalled || s.size === 0) continue;
      const { items } = s.takeOldest(s.size);
      moved += items.length;
      for (const item of items) this.#handOne(item, 0);
    }
    return moved;
  }

  /** What {@link onFull} will call. */
  readonly #onFull = new Set<() => void>();

  /**
   * Calls `fn` once, as soon as `ready()` turns false (a subscription is
   * full, or none is left), or at once if it is false now; returns the
   * function that cancels it. A sink's read that may block long (on a
   * cluster) is ended then, so that events arriving later wait in Redis
   * instead of overfilling the buffers (see `ReadLoop`).
   */
  onFull(fn: () => void): () => void {
    if (!this.ready()) {
      queueMicrotask(fn);
      return () => {};
    }
    this.#onFull.add(fn);
    return () => this.#onFull.delete(fn);
  }

  #full(): void {
    const fns = [...this.#onFull];
    this.#onFull.clear();
    for (const fn of fns) fn();
  }

  endAll(error?: unknown): void {
    this.#only = undefined;
    const dropped = new Set<T>();
    for (const s of [...this.subs]) {
      this.subs.delete(s);
      if (this.#onDropped) for (const item of s.queued()) dropped.add(item);
      s.end(error);
    }
    if (dropped.size > 0) this.#onDropped?.([...dropped]);
    this.#notify();
  }

  /**
   * How many more events every subscriber can take before the hard bound
   * `limit` (0 without subscribers); when sharing, how many all those not
   * stalled can take together (0 when every one is).
   */
  room(limit: number): number {
    if (this.subs.size === 0) return 0;
    if (this.#share) {
      let room = 0;
      for (const s of this.subs) if (!s.ended && !s.stalled) room += Math.max(0, limit - s.size);
      return room;
    }
    let fullest = 0;
    for (const s of this.subs) if (!s.ended) fullest = Math.max(fullest, s.size);
    return Math.max(0, limit - fullest);
  }

  /**
   * True when there is a subscriber and every subscriber has room; when
   * sharing, when one not stalled has room. A sink whose subscribers all
   * stalled reads nothing, as one without subscribers: what it read would
   * wait in a buffer no one takes from (or be given back as it comes, and
   * the reads go on, drawing the whole stream into this consumer's pending
   * list while other instances could run it). It reads again once one asks
   * for an event (`onWake`, which also takes back what was given back).
   */
  ready(): boolean {
    if (this.subs.size === 0) return false;
    if (this.#share) {
      for (const s of this.subs) if (!s.ended && !s.stalled && s.hasRoom()) return true;
      return false;
    }
    for (const s of this.subs) if (!s.hasRoom()) return false;
    return true;
  }

  /** True when there is a subscriber and every one (when sharing: not stalled, if any is not) has an empty buffer. */
  drained(): boolean {
    const skipStalled = this.#share && this.#live();
    let any = false;
    for (const s of this.subs) {
      if (!counts(s, skipStalled)) continue;
      if (s.size > 0) return false;
      any = true;
    }
    return any;
  }

  /** Whether a subscription is there that is not stalled. */
  #live(): boolean {
    for (const s of this.subs) if (!s.ended && !s.stalled) return true;
    return false;
  }

  /**
   * Resolves when `ready()` may have changed, or when `signal` aborts. A wait
   * ended by its signal leaves nothing behind: a read loop aborts one per
   * pause, and chained waits grew for as long as nothing changed (a stalled
   * subscriber), until the change called them all recursively and overflowed the stack.
   */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.#waiting.delete(done);
        resolve();
      };
      this.#waiting.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #notify(): void {
    if (this.#waiting.size === 0) return;
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const w of waiting) w();
  }
}

/** Whether `s` counts for room, readiness and drain: not ended, nor stalled while another is live (`skipStalled`). */
function counts(s: { readonly ended: boolean; readonly stalled: boolean }, skipStalled: boolean): boolean {
  return !s.ended && !(skipStalled && s.stalled);
}
