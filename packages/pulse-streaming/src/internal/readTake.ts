/** What a sink's read brought of one stream: handed out, and what it may have jumped left to verify. */
import type { RawEntry } from './replies.js';
import type { Deliver, SinkStream } from './sinkState.js';

/**
 * Hands out (`deliver`) what a read brought of stream `s`; returns how many.
 * An `unchecked` read (a blocking one, a probe, one of a migrating slot) came
 * without a trim check: what it may have jumped over is left to verify
 * (`unverified`) by a later check. `waits`: the read blocked.
 */
export function takeRead(
  deliver: Deliver,
  s: SinkStream,
  batch: RawEntry[] | undefined,
  unchecked: boolean,
  waits: boolean,
  sentAt: number | undefined,
): number {
  if (batch === undefined || batch.length === 0) return 0;
  const to = (batch[batch.length - 1] as RawEntry)[0];
  s.lastRead = to;
  s.readLog.note((batch[0] as RawEntry)[0], to, batch.length);
  if (unchecked) {
    if (s.unverified) s.unverified.to = to;
    else s.unverified = { from: s.checked ?? '0-0', to };
  }
  // Removed while the read was in flight: handed out all the same, as what it had buffered is. Left
  // pending, they went to another instance a grace period later with their delivery count raised
  // (dead-lettered unseen at maxDeliveries 1), and a noAck sink lost them without a word (review V).
  deliver(s, batch, 1, false, sentAt === undefined ? undefined : { at: sentAt, waits });
  return batch.length;
}
