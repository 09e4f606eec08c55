/**
 * The subscriptions of one reader or sink instance: every event goes to each
 * of them; reading pauses while one is full; what a sink's last subscriber
 * leaves waits for the next one, then is given back (giveBack.ts).
 */
import { type OwnershipGate, Subscription } from '../subscription.js';
import { checkSignal } from './validate.js';

/** @internal How a sink's fanout treats what its subscriptions leave (see giveBack.ts). */
export interface FanoutOptions<T> {
  /**
   * Told of the items a subscription had buffered as it ends (after it left
   * `subs`), and of those left unclaimed by a next subscription (`keepMs`).
   */
  readonly onDropped?: (items: T[]) => void;
  /** Set on every subscription (see `OwnershipGate`). */
  readonly gate?: OwnershipGate<T>;
  /**
   * What the last subscription leaves, and what a read brings while there is
   * none, waits this long for a next subscription, which gets it first, in
   * order (a paused `process()` resumed, a `for await` loop started again);
   * then it goes to `onDropped`.
   */
  readonly keepMs?: number;
}

/** @internal The set of subscriptions of one reader or sink instance. */
export class Fanout<T> {
  readonly subs = new Set<Subscription<T>>();
  #wake: (() => void) | undefined;
  /** Items waiting for a next subscription, with when each was known held. */
  #left: Array<[item: T, heldAt: number]> = [];
  #leftTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly capacity: number,
    private readonly options: FanoutOptions<T> = {},
  ) {}

  add(signal?: AbortSignal): Subscription<T> {
    // Checked here for readers and sinks alike: a bad one would throw a TypeError later.
    checkSignal('signal', signal);
    const sub = new Subscription<T>(
      this.capacity,
      () => this.#notify(),
      (s) => this.remove(s),
      signal,
    );
    if (this.options.gate) sub.setGate(this.options.gate);
    this.subs.add(sub);
    if (this.#left.length > 0) {
      clearTimeout(this.#leftTimer);
      this.#leftTimer = undefined;
      const left = this.#left;
      this.#left = [];
      for (const [item, heldAt] of left) sub.push(item, heldAt);
    }
    this.#notify();
    return sub;
  }

  remove(sub: Subscription<T>): void {
    if (!this.subs.delete(sub)) return;
    const { onDropped } = this.options;
    const dropped = onDropped && sub.size > 0 ? sub.queued() : undefined;
    const heldAt = sub.heldAt;
    sub.end();
    if (dropped) {
      if (this.subs.size === 0 && this.options.keepMs !== undefined) this.#keep(dropped, heldAt);
      else onDropped?.(dropped as T[]);
    }
    this.#notify();
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
  }

  /** Hands `item` to every subscription; `heldAt`: see `Subscription.push`. */
  deliver(item: T, heldAt = 0): void {
    if (this.subs.size === 0) {
      if (this.options.keepMs !== undefined) this.#keep([item], heldAt);
      else this.options.onDropped?.([item]);
    }
    for (const s of this.subs) s.push(item, heldAt);
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
  }

  /** Keeps `items` for a next subscription, for `keepMs` at most (from the first kept). */
  #keep(items: readonly T[], heldAt: number): void {
    for (const item of items) this.#left.push([item, heldAt]);
    this.#leftTimer ??= setTimeout(() => {
      this.#leftTimer = undefined;
      const left = this.#left.map(([item]) => item);
      this.#left = [];
      if (left.length > 0) this.options.onDropped?.(left);
    }, this.options.keepMs).unref();
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
    const dropped = new Set<T>(this.#left.map(([item]) => item));
    this.#left = [];
    clearTimeout(this.#leftTimer);
    this.#leftTimer = undefined;
    for (const s of [...this.subs]) {
      this.subs.delete(s);
      if (this.options.onDropped) for (const item of s.queued()) dropped.add(item);
      s.end(error);
    }
    if (dropped.size > 0) this.options.onDropped?.([...dropped]);
    this.#notify();
  }

  /**
   * How many more events every subscriber can take before the hard bound
   * `limit` (0 without subscribers).
   */
  room(limit: number): number {
    if (this.subs.size === 0) return 0;
    let fullest = 0;
    for (const s of this.subs) if (!s.ended) fullest = Math.max(fullest, s.size);
    return Math.max(0, limit - fullest);
  }

  /** True when there is a subscriber and every subscriber has room. */
  ready(): boolean {
    if (this.subs.size === 0) return false;
    for (const s of this.subs) if (!s.hasRoom()) return false;
    return true;
  }

  /** Resolves when `ready()` may have changed, or when `signal` aborts. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        signal.removeEventListener('abort', done);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const prev = this.#wake;
      this.#wake = () => {
        prev?.();
        done();
      };
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}
