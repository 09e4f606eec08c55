/**
 * When a sink instance claims again on a stream because a nack delay runs
 * out there (its own nack, or a delayed event a claim skipped, whoever
 * nacked it): due times in buckets, so that many nacks due together cost one
 * wake-up of the scheduler (see sinkMaintenance.ts).
 */
import { monotonicNow } from './clock.js';

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
