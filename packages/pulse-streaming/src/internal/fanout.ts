/**
 * The subscriptions of one reader or sink instance, and how what it reads
 * is handed to them.
 */
import { Subscription } from '../subscription.js';
import { checkSignal } from './validate.js';

/** @internal The set of subscriptions of one reader or sink instance. */
export class Fanout<T> {
  readonly subs = new Set<Subscription<T>>();
  #wake: (() => void) | undefined;

  /**
   * `onDropped`: told of the items a subscription had buffered as it ends
   * (after it left `subs`), and of items delivered while there is none.
   * `onAdded`: told when a subscription is added.
   */
  constructor(
    private readonly capacity: number,
    private readonly onDropped?: (items: T[]) => void,
    private readonly onAdded?: () => void,
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
    this.subs.add(sub);
    this.#notify();
    this.onAdded?.();
    return sub;
  }

  remove(sub: Subscription<T>): void {
    if (!this.subs.delete(sub)) return;
    const dropped = this.onDropped && sub.size > 0 ? sub.queued() : undefined;
    sub.end();
    if (dropped) this.onDropped?.(dropped as T[]);
    this.#notify();
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
  }

  /** Hands `item` to every subscription; `heldAt`: see `Subscription.push`. */
  deliver(item: T, heldAt = 0): void {
    if (this.subs.size === 0) this.onDropped?.([item]);
    for (const s of this.subs) s.push(item, heldAt);
    if (this.#onFull.size > 0 && !this.ready()) this.#full();
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
    const dropped = new Set<T>();
    for (const s of [...this.subs]) {
      this.subs.delete(s);
      if (this.onDropped) for (const item of s.queued()) dropped.add(item);
      s.end(error);
    }
    if (dropped.size > 0) this.onDropped?.([...dropped]);
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
