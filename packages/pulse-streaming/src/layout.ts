/**
 * Names of the Redis keys that users and tools may look at: stream keys follow
 * Go Pulse (`pulse:stream:<name>`) so both share streams. Public through
 * `pulse-streaming/keys`; the rest of the layout is internal/keys.ts.
 */

const STREAM_PREFIX = 'pulse:stream:';

/** Redis key of a stream. */
export function streamKey(name: string): string {
  return STREAM_PREFIX + name;
}

/** Stream name of a stream key, or undefined when the key is not a pulse stream. */
export function streamNameOf(key: string): string | undefined {
  return key.startsWith(STREAM_PREFIX) ? key.slice(STREAM_PREFIX.length) : undefined;
}

/** Keys the library keeps for one sink on one stream. */
export interface SinkKeys {
  /** Sorted set: consumer name -> its last sweep of this stream, in Redis server milliseconds (liveness is sink-wide: `sinkInstancesKey`). */
  readonly consumers: string;
  /** String: the consumer that dead-letters without room and counts what went with an expired stream, while it is live. */
  readonly lease: string;
  /** Sorted set: event ID -> due time (Redis server ms) of events nacked with a delay longer than the grace period. */
  readonly delays: string;
  /** String, short-lived (10 minutes): what `destroy()` took from the sink (unread and pending events), for one live instance to report (0 too: destroyed, not expired); `taken` once one has. */
  readonly obituary: string;
}
