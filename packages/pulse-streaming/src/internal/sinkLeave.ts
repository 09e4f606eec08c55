/**
 * How a sink instance is named and how it leaves the streams it reads:
 * `removeStream` and `close()` both leave through the `leave` script, and
 * `close()` never waits longer than a bound on an unresponsive Redis.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { evalScript, type OwnedConnection } from './driver.js';
import { leave } from './scripts.js';
import type { SinkStream } from './sinkState.js';

/** A Redis consumer name unique to this instance: host, pid and random bytes (Go uses a ULID). */
export function consumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Longest wait of each step of `close()` on an unresponsive Redis. */
export const CLOSE_STEP_MS = 2000;

/** Resolves to `p`, or to undefined after `ms`, so shutdown never hangs on a stopped Redis. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

/**
 * Leaves stream `s` (the `leave` script): this consumer stops being live,
 * gives up the lease and leaves the group if it owns no pending entry.
 * `removing` (`removeStream`, not `close()`): the group is destroyed too
 * when no consumer, no live instance and no pending entry is left.
 */
export function leaveStream(
  control: OwnedConnection,
  s: SinkStream,
  sinkName: string,
  consumer: string,
  removing: boolean,
  graceMs: number,
): Promise<unknown> {
  return evalScript(
    control,
    leave,
    [s.stream.key, s.keys.consumers, s.keys.lease, s.registry, s.keys.delays],
    [sinkName, consumer, removing ? '1' : '0', 2 * graceMs],
  );
}
