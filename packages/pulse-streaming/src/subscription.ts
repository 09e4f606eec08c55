import { monotonicNow } from './internal/clock.js';

/**
 * @internal How a sink makes sure a buffered event is still its own before it
 * hands it out: events are held (kept from redelivery) while they wait, and
 * once no hold covered them for `staleMs` (a stalled subscriber, a frozen
 * process), they are checked with Redis first and those another consumer
 * took, or that were dead-lettered or found lost meanwhile, are dropped.
 */
export interface OwnershipGate<T> {
  /** Buffered items not known held for this long (ms) are checked before one is handed out. */
  readonly staleMs: number;
  /** Re-holds `items` and drops from the buffers those no longer ours; retries until done or closed. */
  check(items: readonly T[]): Promise<void>;
  /** Called for each item as it is handed out: what was never handed out is given back when dropped. */
  taken(item: T): void;
}

/** @internal What a subscription tells the reader or sink that feeds it (see `Fanout`). */
export interface SubscriptionHooks<T> {
  /** Its buffer emptied or turned not full: reading may go on. */
  readonly onDrain: () => void;
  /** It leaves (unsubscribe, `break`, its signal). */
  readonly onReturn: (sub: Subscription<T>) => void;
  /** It asked for an event again after a sink found it stalled. */
  readonly onWake?: () => void;
  /** It is about to wait with an empty buffer: a sink may move events a sibling buffered into it. */
  readonly onHungry?: (sub: Subscription<T>) => void;
}

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
  #lastActivity = monotonicNow();
  /** With a gate: when every buffered item was last known held (ms). */
  #heldAt = 0;
  /** When an item known held too long ago was last pushed (ms): a hold that began before it did not cover it. */
  #stalePushedAt = 0;
  #gate: OwnershipGate<T> | undefined;
  #lastTaken: T | undefined;
  #checking: Promise<void> | undefined;
  /** The consumer is busy with what it took (`process()` handlers running): its buffer stays held. */
  #busy: (() => boolean) | undefined;
  /** Set by next(): reading the clock there would cost as much as the rest of next() (~50 ns). */
  #tookSinceLook = false;
  /** Set by a sink when the subscriber took nothing for a grace period (see `Fanout.releaseStalled`); cleared by `next()`. */
  #stalled = false;
  readonly #hooks: SubscriptionHooks<T>;
  readonly #capacity: number;
  /** The caller's signal and our listener on it, taken off when the subscription ends. */
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#hooks.onReturn(this);

  /** @internal */
  constructor(capacity: number, hooks: SubscriptionHooks<T>, signal?: AbortSignal) {
    this.#capacity = capacity;
    this.#hooks = hooks;
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

  /**
   * @internal The last event handed out through the ownership gate (a sink's):
   * what a `for await` loop stuck in its body holds. A copy of it claimed
   * again meanwhile is not given back with the buffer (giveBack.ts).
   */
  get lastTaken(): T | undefined {
    return this.#lastTaken;
  }

  #take(gate: OwnershipGate<T>, item: T): void {
    this.#lastTaken = item;
    gate.taken(item);
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
   * look late, and looks come every maintenance tick. Waiting for one includes
   * waiting on the ownership check of its next buffered event (`#checking`,
   * set only by a `next()` that awaits it): that check retries for as long as
   * Redis is down, and a subscriber asking all along must not be taken for a
   * stalled one and have its buffer given back (counted lost after a rollback).
   */
  get lastActivity(): number {
    if (this.#waiters.length > 0 || this.#checking !== undefined || this.#tookSinceLook || this.#busy?.() === true) {
      this.#tookSinceLook = false;
      this.#lastActivity = monotonicNow();
    }
    return this.#lastActivity;
  }

  /** @internal Whether the subscriber is waiting for an event now. */
  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /** @internal True once a sink found it took nothing for a grace period, until it asks for an event again. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** @internal Marks it stalled (see `Fanout.releaseStalled`): `next()` ends it. */
  stall(): void {
    this.#stalled = true;
  }

  /**
   * @internal Takes out the `n` oldest buffered events, with the time they
   * were all last known held (for `push` into another subscription).
   */
  takeOldest(n: number): { items: T[]; heldAt: number } {
    const items = this.#items.slice(this.#head, this.#head + n);
    this.#items = this.#items.slice(this.#head + items.length);
    this.#head = 0;
    if (items.length > 0) this.#hooks.onDrain();
    return { items, heldAt: this.#heldAt };
  }

  /** @internal Checks ownership of buffered items with `gate` before handing them out once their hold may have lapsed. */
  setGate(gate: OwnershipGate<T>): void {
    this.#gate = gate;
  }

  /**
   * @internal While `busy()` is true the subscriber counts as active though it
   * takes nothing: `process()` with every slot taken by a running handler.
   */
  keepHeldWhile(busy: () => boolean): void {
    this.#busy = busy;
  }

  /** @internal Every item buffered when a hold that began at `at` (ms) was sent is held as of `at`. */
  markHeld(at: number): void {
    // A stale item pushed after the hold began was not in it: it stays unchecked.
    if (this.#stalePushedAt >= at) return;
    if (at > this.#heldAt) this.#heldAt = at;
  }

  /**
   * @internal Puts `items`, older than everything buffered, ahead of the
   * buffer, oldest first: a reader's events that a leaving sibling
   * subscription had and this one, which joined after they were read, never
   * got (see `Reader.unsubscribe`).
   */
  pushFront(items: readonly T[]): void {
    if (this.#ended || items.length === 0) return;
    this.#items = [...items, ...this.#items.slice(this.#head)];
    this.#head = 0;
    // Waiters mean the buffer was empty: each takes one, in order.
    for (let i = 0; i < items.length; i++) {
      const w = this.#waiters.shift();
      if (!w) break;
      this.next().then(w.resolve, w.reject);
    }
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
    if (dropped.length > 0) this.#hooks.onDrain();
    return dropped;
  }

  /** @internal */
  hasRoom(): boolean {
    return this.#ended || this.size < this.#capacity;
  }

  /**
   * @internal Hands an event to the subscriber; `heldAt` is when it was known
   * held (read or claimed), the buffer's hold time if it was empty.
   */
  push(item: T, heldAt = 0): void {
    if (this.#ended) return;
    // Known held too long ago (a reply that waited in the socket through a
    // frozen event loop): another consumer may have taken it meanwhile, so a
    // waiting subscriber gets it only through the ownership check, like a
    // buffered one. Readers have no gate.
    // Readers have no gate: no clock read per event for them.
    const gate = this.#gate;
    const stale = gate !== undefined && monotonicNow() - heldAt > gate.staleMs;
    if (stale) this.#stalePushedAt = monotonicNow();
    const w = this.#waiters.shift();
    if (w && !stale) {
      if (gate) this.#take(gate, item);
      w.resolve({ value: item, done: false });
      return;
    }
    // The buffer is held as of its oldest hold: a stale item lowers it.
    if (this.#items.length === this.#head || heldAt < this.#heldAt) this.#heldAt = heldAt;
    this.#items.push(item);
    if (w) this.next().then(w.resolve, w.reject);
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
    this.#hooks.onDrain();
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
    if (this.#stalled) {
      this.#stalled = false;
      this.#hooks.onWake?.();
    }
    if (this.size > 0) {
      if (this.#gate !== undefined && monotonicNow() - this.#heldAt > this.#gate.staleMs) return this.#recheck(this.#gate);
      const value = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined as T;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (this.size === this.#capacity - 1 || this.size === 0) this.#hooks.onDrain();
      if (this.#gate) this.#take(this.#gate, value);
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return this.#endedResult();
    // A sink's subscription takes events a busy sibling buffered rather than wait beside them.
    if (this.#hooks.onHungry) {
      this.#hooks.onHungry(this);
      if (this.size > 0) return this.next();
    }
    this.#hooks.onDrain();
    return this.#waitForItem();
  }

  // The promises of the slow paths are made apart: a closure in next() itself
  // (capturing `this`) made V8 allocate a context on every call, the fast
  // path's too (about 50 bytes per event, with a million events a second).

  /** What `next()` gives once the subscription ended. */
  #endedResult(): Promise<IteratorResult<T>> {
    return new Promise((resolve, reject) => this.#settleEnded({ resolve, reject }));
  }

  /** What `next()` gives while the buffer is empty: settled by the next `push` or `end`. */
  #waitForItem(): Promise<IteratorResult<T>> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Checks that the buffered items are still ours (dropping those that are not), then takes the next one. */
  async #recheck(gate: OwnershipGate<T>): Promise<IteratorResult<T>> {
    if (!this.#checking) {
      const at = monotonicNow();
      this.#checking = gate.check(this.queued()).finally(() => {
        this.#checking = undefined;
        this.markHeld(at);
      });
    }
    // The gate retries until it is done or the sink closed (which ends this subscription).
    await this.#checking;
    return this.next();
  }

  /** Leaving a `for await` loop unsubscribes. */
  return(): Promise<IteratorResult<T>> {
    this.#hooks.onReturn(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  /** A subscription is its own iterator. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Unsubscribes. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#hooks.onReturn(this);
  }
}
