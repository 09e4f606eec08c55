/** What one sink instance has seen since it was created. */
export interface SinkCounters {
  /**
   * Events read for the first time into this instance's subscriptions,
   * counted as read. One that waited in a buffer and went back to the sink
   * unseen (a loop that stopped taking events, `close()`) is counted out
   * again, and counted by whoever takes it next: an event handed out once
   * counts once, so this count can go down (not a monotonic counter).
   */
  delivered: number;
  /** Events read again (claimed) after the grace period or a nack; counted, and counted out, as `delivered` is. */
  redelivered: number;
  /** Events acknowledged through this instance. */
  acked: number;
  /** Events this instance moved to the dead-letter stream. */
  deadLettered: number;
  /** Events trimmed or deleted before they were acked, found by this instance. */
  lost: number;
  /** Events the sink's `topic` or `filter` rejected (and acked). */
  filtered: number;
  /**
   * Acks through this instance that found the event no longer pending: it
   * was acked already (by this instance, or by another consumer after the
   * grace period ran out and it was redelivered), dead-lettered or reported
   * lost. The event was handled more than once, or handled after it was
   * given up: each one is also logged as a warning with its IDs. Such an
   * ack still resolves.
   */
  staleAcks: number;
}
