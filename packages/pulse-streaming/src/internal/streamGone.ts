/**
 * What a sink reports when it finds a stream's key gone, or created anew
 * (`SinkHolds.streamGone`): after `destroy()` the obituary's exact count;
 * after an expiry or a deletion outside the library, the estimate of its
 * last check, the buffered events read after that check (in no estimate),
 * and what its handlers hold of those, counted when they give it back
 * (`goneAfterCheck`); left to the lease holder by an instance that did not
 * hold the lease at its check (holderWatch.ts).
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { type Connection, evalScript } from './driver.js';
import { expiryEstimate, lostWhenGone } from './expiryLoss.js';
import type { Fanout } from './fanout.js';
import { type HolderWatch, markStreamReported, reportLeftTo } from './holderWatch.js';
import { compareIds, previousId } from './ids.js';
import { forgetLetGo, newestReadOrLetGo, sayLetGo } from './letGo.js';
import { NO_OBITUARY, takeObituary } from './lossScripts.js';
import { errorText } from './redisErrors.js';
import { afterCheck, forgetUnsure, goneAfterCheck, goneWithKey } from './sinkRollback.js';
import type { SinkStream } from './sinkState.js';

/** Why an instance that made no check of an expired stream, whose lease holder is gone, says events may be lost. */
const UNCHECKED =
  'events may have gone with their stream (expired), how many is unknown: the lease holder that counts them did not report it and this instance made no check of the stream';

/** Why events of a destroyed stream are counted lost (here, and by an instance that joins after the destroy: ownership.ts). */
export const DESTROYED =
  'events deleted with their stream (destroy) before this sink acked them (unread, buffered, or being handled)';

/** What the report needs: the sink, and the holds that drop buffered events and count losses. */
export interface GoneHost {
  readonly host: {
    readonly name: string;
    readonly consumerName: string;
    readonly control: Connection;
    readonly logger: Logger;
    readonly fanout: Fanout<SinkEvent>;
    /** The sink's ack grace period (ms). */
    readonly graceMs: number;
    holders(): HolderWatch | undefined;
  };
  readonly holds: {
    dropBuffered(name: string, ids: readonly string[]): string[];
    countLost(stream: string, count: number, why: string): void;
    maybeLost(stream: string, why: string, ids?: readonly string[]): void;
  };
}

/**
 * Reports what went with stream `s`'s key (events before `before` only: the
 * key was created anew at it). Returns the last entry of the estimate this
 * instance left to the lease holder, when it left one (see `SinkHolds.groupGone`).
 */
export async function reportStreamGone(
  { host, holds }: GoneHost,
  s: SinkStream,
  before: string | undefined,
): Promise<string | undefined> {
  // Go's Destroy deletes the key too, and moves Go's services to another (goLifecycle.ts).
  s.stream.goLifecycle.recheck();
  const buffered = new Set<string>();
  for (const sub of host.fanout.subs)
    for (const ev of sub.queued())
      if (ev.streamName === s.stream.name && (before === undefined || compareIds(ev.id, before) < 0)) buffered.add(ev.id);
  holds.dropBuffered(s.stream.name, [...buffered]);
  // The last check's estimate is taken now, with the buffered events: a check of the key created
  // anew, answered while the obituary is read, must not be taken for the old key's (it counted the
  // new key's unread events too, when a second NOGROUP reported the same key again).
  const estimate = expiryEstimate(s);
  s.lag = -1;
  let count = buffered.size;
  let left: string | undefined;
  let why = 'events gone with their stream (expired or deleted) before this sink acked them (unread, buffered, or being handled)';
  try {
    const obituary = Number(await evalScript(host.control, takeObituary, [s.keys.obituary], []));
    if (obituary !== NO_OBITUARY) why = DESTROYED;
    else if (estimate >= 0) why += ' (an estimate: unread and pending events at its last check)';
    const holder = reportLeftTo(s, obituary, host.consumerName, estimate >= 0);
    const watch = holder === undefined ? undefined : host.holders();
    // Expired or deleted: what this instance read after its last check (a blocking read brought it)
    // is in none of its estimates: its buffered events of it are counted here, and those its handlers
    // hold when they give them back (`goneAfterCheck`). The lease holder's estimate has them only if
    // its own check came later, which cannot be told: counted twice then, rather than not at all
    // (outside review X).
    const past = obituary === NO_OBITUARY && estimate >= 0 ? [...buffered].filter((id) => afterCheck(s, id)).length : 0;
    const checked = buffered.size - past;
    const tail = s.tailAtCheck;
    if (obituary === NO_OBITUARY && estimate >= 0) {
      // Let go of after its last check: pending for no one, in no estimate (destroy's obituary has them).
      const upTo = before === undefined ? newestReadOrLetGo(s) : previousId(before);
      const letGo = sayLetGo(s, tail ?? '0-0', upTo);
      if (letGo !== undefined)
        holds.maybeLost(
          s.stream.name,
          `events gone with their stream (expired or deleted) after its last check: ${letGo.text}`,
          letGo.ids,
        );
    }
    if (obituary === NO_OBITUARY) goneAfterCheck(s, before);
    if (holder !== undefined && watch && estimate >= 0) {
      watch.leave(s.stream.name, Math.max(estimate, checked), why);
      count = past;
      left = tail ?? '0-0';
    } else {
      // Not left to another, or no watch yet (reported as the holder would), or no check: the buffered events.
      count = lostWhenGone(obituary, estimate, holder === undefined ? s.leaseAtCheck : undefined, checked) + past;
      if (holder !== undefined && watch) watch.leave(s.stream.name, -1, UNCHECKED);
      // This instance's estimate is the sink's report: the others, waiting for it, need not report theirs.
      else if (obituary === NO_OBITUARY && estimate >= 0) markStreamReported(host, s.stream.name, host.graceMs);
    }
  } catch (err) {
    host.logger.warn({ stream: s.stream.name, err: errorText(err) }, 'could not read what went with the stream');
  }
  if (count > 0) holds.countLost(s.stream.name, count, why);
  // Found after a reconnect with no check since (Redis restarted without persistence) and nothing
  // counted for it here: what this instance read before is counted as its handlers settle it (see
  // `goneWithKey`), and what it had not read is said lost, how many unknown. Counted here (the
  // estimate of the last check), or without a reconnect (an expiry, a DEL: the estimate covers it),
  // not again: that counted events twice (sinkDeletes).
  if (count > 0) s.lossCounted = true;
  else goneWithKey(s, (name, why, ids) => holds.maybeLost(name, why, ids));
  // Events let go of with NOGROUP before this: counted above when a loss covered them, else in the estimate.
  forgetUnsure(s);
  forgetLetGo(s, before);
  return left;
}
