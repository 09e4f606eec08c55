/**
 * Giving events back (nacks): redelivered after a delay, the delay kept in
 * the sink's delays set (`touch` with ARGV[4] '1'), whatever the grace
 * periods. Each event is held here until its nack lands: a claim of this
 * instance's that took it back meanwhile (its keep-alive late) must not hand
 * it out before the delay (heldHere.ts).
 */
import type { SinkEvent } from '../event.js';
import type { Connection } from './driver.js';
import { byStream } from './ids.js';
import { streamKey } from './keys.js';
import { isReplyError, toPulseError } from './redisErrors.js';
import { NACKED_IDLE_MS, nackedFor } from './sinkDue.js';
import type { SinkHolds } from './sinkHolds.js';

/**
 * Nacks `events` of stream `name`, and accounts for those it found gone.
 * Those it gave back are noted with the delivery counts it found: a claim of
 * ours still under way that took one with that very count ran before the
 * nack (keep-alive late), and must not hand it out before the delay; one
 * that ran after it raised the count, and takes it when due, rightly (a
 * delay of 0: at once).
 */
async function nackStream(holds: SinkHolds, conn: Connection, name: string, events: readonly SinkEvent[], delayMs: number) {
  const ids = events.map((ev) => ev.id);
  const { gone, vanished, mine, counts } = await holds.touchAll(conn, name, NACKED_IDLE_MS, ids, nackedFor(delayMs));
  holds.nacked(name, ids, gone, vanished);
  if (mine.length > 0) holds.running.settled(name, mine, counts);
  // Given back but no longer in the stream: they can never be redelivered.
  if (gone.length > 0) await holds.reportGone(streamKey(name), gone, 'event trimmed or deleted before it could be redelivered');
  await holds.lostOnNack(name, vanished);
}

/**
 * Gives events back whose handler failed (`process()`, `processBatch()`: the
 * run holds them until this settles), one call per stream for all of them.
 */
export async function nackEvents(
  holds: SinkHolds,
  conn: Connection,
  events: readonly SinkEvent[],
  delayMs: number,
): Promise<void> {
  for (const ev of events) ev.markSettled();
  for (const [name, ofStream] of byStream(events)) {
    try {
      await nackStream(holds, conn, name, ofStream, delayMs);
    } catch (err) {
      throw toPulseError(err, `nack ${ofStream.length} event(s) of stream ${name}`);
    }
  }
}

/** Gives an event back (see `SinkEvent.nack`): redelivered after `delayMs`. */
export async function nackEvent(
  holds: SinkHolds,
  conn: Connection,
  event: SinkEvent,
  delayMs: number,
  graceMs: number,
): Promise<void> {
  const untrack = holds.running.track(new Set([event]));
  try {
    await holds.touchesLanded(graceMs);
    await nackStream(holds, conn, event.streamName, [event], delayMs);
  } catch (err) {
    if (!isReplyError(err, 'NOGROUP')) throw toPulseError(err, `nack event ${event.id}`);
    // Its group is gone: with its stream's key (expired, deleted, Redis restarted empty), the event
    // cannot be redelivered and is counted lost when Redis lost it; with a group destroyed on a
    // living key, it comes again from 0 (see `recreate`).
    try {
      await holds.groupGone(event.streamName, [event.id], 'nacked after their stream or group was gone');
    } catch (e) {
      throw toPulseError(e, `nack event ${event.id} (its consumer group was gone)`);
    }
  } finally {
    untrack();
  }
}
