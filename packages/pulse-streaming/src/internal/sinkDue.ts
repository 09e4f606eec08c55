/**
 * How a nack delay is kept (the idle time and the delays set), and when a
 * sink instance claims again on a stream because a nack delay runs out
 * there (its own nack, or a delayed event a claim skipped, whoever nacked
 * it): due times in buckets, so that many nacks due together cost one
 * wake-up of the scheduler (see sinkMaintenance.ts).
 */
import { monotonicNow } from './clock.js';
import { MAX_GRACE_MS } from './sinkState.js';

/**
 * The idle time a nack gives an event: at least any instance's grace period,
 * so that every instance of the sink may claim it as soon as its delay has
 * run, whatever grace period each runs with (a delay told as idle = grace -
 * delay was kept only by instances of the same grace period). The delay is
 * kept apart, in the sink's delays set, which every claim consults.
 */
export const NACKED_IDLE_MS = MAX_GRACE_MS;

/** The `touch` nack argument for a delay: its due time in the delays set, or (0) none and an earlier one cleared. */
export function nackedFor(delayMs: number): { delayMs?: number } {
  return delayMs > 0 ? { delayMs } : {};
}

/** Due times are kept in buckets of this many ms (one wake-up per bucket). */
const DUE_BUCKET_MS = 10;

export class DueClaims {
  /** Bucket time (`monotonicNow()` ms) -> stream keys. */
  readonly #due = new Map<number, Set<string>>();

  /** Stream `key` has an event due in `ms`; returns the time to wake at. */
  add(key: string, ms: number): number {
    // After the nack's (or the claim's) reply: the due time was set before now on the server.
    const at = Math.ceil((monotonicNow() + ms + 1) / DUE_BUCKET_MS) * DUE_BUCKET_MS;
    const keys = this.#due.get(at) ?? new Set<string>();
    keys.add(key);
    this.#due.set(at, keys);
    return at;
  }

  /** The earliest due time (infinity when none). */
  next(): number {
    let at = Number.POSITIVE_INFINITY;
    for (const t of this.#due.keys()) at = Math.min(at, t);
    return at;
  }

  /** Takes out the stream keys whose time came. */
  take(into: Set<string>): void {
    const now = monotonicNow();
    for (const [at, keys] of [...this.#due]) {
      if (at > now) continue;
      this.#due.delete(at);
      for (const key of keys) into.add(key);
    }
  }
}

/**
 * A sleep until a time (`sleepUntil`) that ends sooner when told of an
 * earlier one (`wakeBy`), woken (`wake`), or aborted: the scheduler of a
 * sink's background work (sinkMaintenance.ts).
 */
export class Alarm {
  #wake: (() => void) | undefined;
  #at = Number.POSITIVE_INFINITY;

  /** Sleeps until `at` (monotonic ms), or until woken or `signal` aborts. */
  sleepUntil(at: number, signal: AbortSignal): Promise<void> {
    const ms = at - monotonicNow();
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      // One timer and one abort listener at a time, however often nacks wake it.
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#at = Number.POSITIVE_INFINITY;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
      this.#at = at;
    });
  }

  /** Ends the sleep now, if one runs. */
  wake(): void {
    this.#wake?.();
  }

  /** Ends the sleep if it would last past `at` (the caller then sleeps again, until `at`). */
  wakeBy(at: number): void {
    if (at < this.#at) this.#wake?.();
  }
}
