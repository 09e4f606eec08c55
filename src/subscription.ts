import { checkSignal } from './internal/validate.js';

/**
 * A subscription: an async iterable of events with a bounded buffer. The
 * reader or sink that feeds it pauses reading while the buffer is full.
 */
export class Subscription<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #head = 0;
  #waiters: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }> = [];
  #ended = false;
  #error: unknown;
  #errorReported = false;
  #lastActivity = Date.now();
  /** Set by next(): reading the clock there would cost as much as the rest of next() (~50 ns). */
  #tookSinceLook = false;
  readonly #onDrain: () => void;
  readonly #onReturn: (sub: Subscription<T>) => void;
  readonly #capacity: number;
  /** The caller's signal and our listener on it, taken off when the subscription ends. */
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#onReturn(this);

  /** @internal */
  constructor(capacity: number, onDrain: () => void, onReturn: (sub: Subscription<T>) => void, signal?: AbortSignal) {
    this.#capacity = capacity;
    this.#onDrain = onDrain;
    this.#onReturn = onReturn;
    if (signal) {
      if (signal.aborted) queueMicrotask(this.#onAbort);
      else {
        // One signal often outlives many subscriptions (a request's, the
        // process's): end() removes the listener, or they pile up on it.
        this.#signal = signal;
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  /** Events buffered and not yet taken. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** True once the subscription has ended (unsubscribed, closed or failed). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * @internal When the subscriber was last seen taking an event or waiting for
   * one (ms): the time of the first look after it took one, so at most one
   * look late, and looks come every maintenance tick.
   */
  get lastActivity(): number {
    if (this.#waiters.length > 0 || this.#tookSinceLook) {
      this.#tookSinceLook = false;
      this.#lastActivity = Date.now();
    }
    return this.#lastActivity;
  }

  /** @internal Events buffered and not yet taken. */
  queued(): readonly T[] {
    return this.#items.slice(this.#head);
  }

  /** @internal Removes buffered events that match `gone` (no longer deliverable); returns them. */
  drop(gone: (item: T) => boolean): T[] {
    const dropped: T[] = [];
    this.#items = this.#items.slice(this.#head).filter((item) => {
      if (!gone(item)) return true;
      dropped.push(item);
      return false;
    });
    this.#head = 0;
    if (dropped.length > 0) this.#onDrain();
    return dropped;
  }

  /** @internal */
  hasRoom(): boolean {
    return this.#ended || this.size < this.#capacity;
  }

  /** @internal Hands an event to the subscriber. */
  push(item: T): void {
    if (this.#ended) return;
    const w = this.#waiters.shift();
    if (w) w.resolve({ value: item, done: false });
    else this.#items.push(item);
  }

  /** @internal Ends iteration; buffered events are dropped. With `error`, the next `next()` rejects with it. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = undefined;
    this.#error = error;
    this.#items = [];
    this.#head = 0;
    for (const w of this.#waiters.splice(0)) this.#settleEnded(w);
    this.#onDrain();
  }

  #settleEnded(w: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }): void {
    if (this.#error !== undefined && !this.#errorReported) {
      this.#errorReported = true;
      w.reject(this.#error);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  /** The next event; waits while the buffer is empty; done once the subscription ended. */
  next(): Promise<IteratorResult<T>> {
    this.#tookSinceLook = true;
    if (this.size > 0) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined as T;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (this.size === this.#capacity - 1 || this.size === 0) this.#onDrain();
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) {
      return new Promise((resolve, reject) => this.#settleEnded({ resolve, reject }));
    }
    this.#onDrain();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Leaving a `for await` loop unsubscribes. */
  return(): Promise<IteratorResult<T>> {
    this.#onReturn(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  /** A subscription is its own iterator. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Unsubscribes. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#onReturn(this);
  }
}

/** @internal The set of subscriptions of one reader or sink instance. */
export class Fanout<T> {
  readonly subs = new Set<Subscription<T>>();
  #wake: (() => void) | undefined;

  constructor(private readonly capacity: number) {}

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
    return sub;
  }

  remove(sub: Subscription<T>): void {
    if (!this.subs.delete(sub)) return;
    sub.end();
    this.#notify();
  }

  deliver(item: T): void {
    for (const s of this.subs) s.push(item);
  }

  endAll(error?: unknown): void {
    for (const s of [...this.subs]) {
      this.subs.delete(s);
      s.end(error);
    }
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
