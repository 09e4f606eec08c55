/**
 * Where Redis's clock matters and this process cannot correct it: entry IDs
 * are its milliseconds (a `startAt` date is compared with them), and idle
 * times of pending events, nack delays and the ages of sink instances run on
 * it. Both are said in a warning, so that a skipped start or late
 * redeliveries are never silent.
 */
import type { Logger } from '../logger.js';
import { warnOrEmit } from './lossReport.js';
import type { ResolvedStart } from './start.js';
import type { StreamHandle } from './streamHandle.js';

/** The `code` of the process warning that a `startAt` date is ahead of Redis's clock. */
export const START_AHEAD_CODE = 'PULSE_START_AHEAD_OF_REDIS';
/** The `code` of the process warning that Redis's clock jumped. */
export const CLOCK_JUMP_CODE = 'PULSE_REDIS_CLOCK_JUMPED';
/** Differences smaller than this are the two clocks' ordinary drift and round trips, not said. */
export const CLOCK_TOLERANCE_MS = 1000;

/** Redis's clock (ms) from a TIME reply. */
function timeMs(reply: unknown): number {
  const [s, us] = Array.isArray(reply) ? reply : [];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/**
 * Warns when a `startAt` date is more than a second ahead of Redis's clock
 * (read on the stream's node): entries Redis adds before its clock gets
 * there have smaller IDs and are not the reader's or sink's, which is what
 * a date in the future asks for, and what `new Date()` silently does when
 * this host's clock runs ahead of Redis's. Best effort: a failed TIME says nothing.
 */
export async function sayIfStartAhead(stream: StreamHandle, start: ResolvedStart, who: string): Promise<void> {
  if (start.kind !== 'id' || start.dateMs === undefined) return;
  let redisNow: number;
  try {
    redisNow = timeMs(await stream.driver.send(['TIME'], stream.key));
  } catch {
    return;
  }
  const aheadMs = start.dateMs - redisNow;
  if (!(aheadMs > CLOCK_TOLERANCE_MS)) return;
  warnOrEmit(
    stream.logger,
    stream.hasLogger,
    { aheadMs, startAt: new Date(start.dateMs).toISOString(), redisTime: new Date(redisNow).toISOString() },
    `stream ${stream.name}: ${who} starts at a date ${aheadMs} ms ahead of Redis's clock: entries Redis adds ` +
      `before its clock gets there are skipped (neither delivered nor counted lost). If that is not meant, ` +
      `this host's clock is ahead of Redis's: start at 'newest' instead of new Date()`,
    START_AHEAD_CODE,
  );
}

/**
 * Watches Redis's clock through the times a sink's liveness calls return,
 * against this process's monotonic clock, and says when it jumps by more
 * than a second: an NTP step of the Redis host, or a failover to a node
 * whose clock differs. A step back delays redeliveries, nack delays and
 * retries by its size (idle times are Redis's clock); a step forward makes
 * events and instances look idle or gone that much early.
 */
export class RedisClockWatch {
  #last: { readonly redis: number; readonly sentAt: number; readonly repliedAt: number } | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly hasLogger: boolean,
    private readonly who: string,
  ) {}

  /**
   * Redis's clock read `redisNow` between `sentAt` and `repliedAt` (this
   * process's monotonic clock). Between two readings it may have advanced
   * by anything from the gap between the first reply and the second send to
   * the gap between the first send and the second reply; beyond that, by
   * more than the tolerance, it jumped.
   */
  observe(redisNow: number, sentAt: number, repliedAt: number): void {
    const last = this.#last;
    this.#last = { redis: redisNow, sentAt, repliedAt };
    if (last === undefined || !Number.isFinite(redisNow)) return;
    const earliest = last.redis + (sentAt - last.repliedAt);
    const latest = last.redis + (repliedAt - last.sentAt);
    if (redisNow < earliest - CLOCK_TOLERANCE_MS) {
      const jumpMs = earliest - redisNow;
      this.#say(
        -jumpMs,
        `Redis's clock went back by at least ${jumpMs} ms: redeliveries of unacked events, nack delays and ` +
          `retries of ${this.who} run that much late until it catches up`,
      );
    } else if (redisNow > latest + CLOCK_TOLERANCE_MS) {
      const jumpMs = redisNow - latest;
      this.#say(
        jumpMs,
        `Redis's clock jumped forward by at least ${jumpMs} ms: pending events and sink instances of ` +
          `${this.who} look idle that much early (some events may be delivered again)`,
      );
    }
  }

  #say(jumpMs: number, msg: string): void {
    warnOrEmit(this.logger, this.hasLogger, { jumpMs }, msg, CLOCK_JUMP_CODE);
  }
}
