/**
 * The dead letters a `process()` or `processBatch()` run makes itself: an
 * event whose data does not decode (before a handler sees it), and one whose
 * handler failed on its last allowed delivery (`maxDeliveries`). Retried
 * while Redis cannot take them, held from the sink's claims until they land.
 */
import type { DecodeError, PulseError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import { cutText } from './cutText.js';
import type { ProcessHost } from './processHost.js';
import { errorText, toPulseError } from './redisErrors.js';
import { NOT_ANSWERED, untilAnswered } from './untilAnswered.js';

/** Which events a run dead-letters itself, for its log lines. */
export interface DeadLetterWhy {
  /** "dead letter of <what>". */
  readonly what: string;
  /** "not dead-lettered (<short>) as ...". */
  readonly short: string;
}

export const DECODE: DeadLetterWhy = { what: 'an event that does not decode', short: 'it does not decode' };
export const MAX_DELIVERIES: DeadLetterWhy = { what: 'an event at max deliveries', short: 'at max deliveries' };

/**
 * Most characters of a `decode:` reason. The message names the event (a
 * name its producer chose, of any length) and says what the codec said
 * about the payload (a parser may quote it): uncut, a megabyte event name
 * was stored again in its dead letter and shown by every listing of them.
 */
export const MAX_DECODE_REASON = 1024;

/** The `reason` of an event whose data does not decode: `decode: <what failed>`, cut to {@link MAX_DECODE_REASON}. */
export function decodeReason(failure: DecodeError): string {
  return cutText(`decode: ${failure.message}`, MAX_DECODE_REASON);
}

/** What a run gives its dead letters. */
export interface RunBounds {
  /** Redis refused a dead letter for good: ends the run with `err` (every later one would fail alike). */
  readonly stop: (err: PulseError) => void;
  /** True once `sent` settled, false when the sink closed a close() step before it did (given up). */
  readonly answered: (sent: Promise<void>) => Promise<boolean>;
}

/**
 * Moves `event` to the dead-letter stream with `reason`; `why` says in the
 * logs which kind of event it is.
 */
export async function deadLetterFromRun(
  host: ProcessHost,
  event: SinkEvent,
  reason: string,
  why: DeadLetterWhy,
  { stop, answered }: RunBounds,
): Promise<void> {
  // Held until it lands, also past the run's abort (the event is settled: out of the touches): a
  // claim of ours meanwhile must not hand it out again (heldHere.ts).
  const untrack = host.trackRunning(new Set([event]));
  const what = `dead letter of ${why.what}`;
  // Retried while Redis cannot take it (see untilAnswered.ts): only one that lands finds an event Redis
  // lost in a rollback meanwhile, then written from the copy held here.
  const failed = await untilAnswered(
    async () => {
      const sent = host.deadLetter(event, reason);
      if (await answered(sent)) return;
      sent.catch(() => {});
      // Not a success: the sink closed (untilAnswered then stops, and it is said below).
      throw NOT_ANSWERED;
    },
    {
      stopping: host.closed,
      logger: host.logger,
      what,
      fields: { id: event.id },
    },
  ).finally(untrack);
  if (failed === undefined) return;
  const err = errorText(failed.err);
  if (failed.why === 'refused') {
    // Refused for good (a dead-letter key of another type, NOPERM): every later one would
    // fail the same way, so stop, as the sweep does, rather than run on without dead letters.
    host.logger.error({ id: event.id, err }, `${what} failed for good: the event stays pending, processing stops`);
    stop(toPulseError(failed.err, `dead-letter event ${event.id} of stream ${event.streamName}`));
  } else if (failed.why === 'nogroup') {
    // The stream destroyed or expired (the read path reports what went with it), or the group
    // destroyed on a living key (made again at 0: the event comes again).
    host.logger.warn({ id: event.id, err }, `${what} found its consumer group gone`);
    await host.groupGone([event], `not dead-lettered (${why.short}) as their stream or group was gone`);
  } else if (failed.err === NOT_ANSWERED) {
    // Still on its way, or never: if it lands it is moved; else redelivered and dead-lettered then.
    host.logger.warn(
      { id: event.id },
      `${what} not answered after close: if it does not land, the event is redelivered after the grace period and dead-lettered then, unless Redis lost it in a rollback`,
    );
  } else {
    // Left pending (the script adds before it acks): redelivered after the grace period, and dead-lettered then
    // (a second time on a cluster when the add landed and the ack, retried for a while, did not: deadLetterMove.ts).
    host.logger.warn(
      { id: event.id, err },
      `${what} failed as the sink closed: it is redelivered after the grace period and dead-lettered then, unless Redis lost it in a rollback`,
    );
  }
}
