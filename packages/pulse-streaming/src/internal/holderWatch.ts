/**
 * Who reports what went with an expired stream when several instances of a
 * sink read it. One report for the sink: the instance that held the stream's
 * lease at its last trim check reports its estimate (expiryLoss.ts) and
 * marks the stream reported in the sink-wide `reported` set. The others
 * leave it to that one, and wait for the mark: when none newer than their
 * finding the stream gone (less a grace period) comes within a grace period,
 * the holder did not report (it crashed, froze, closed, or did not read the
 * stream), and they report their own estimate (and mark it). Without this, a
 * holder that crashed just before the expiry (it still counts as live for
 * 2 x grace) took the loss with it: reported by nobody.
 *
 * A loss two instances both report is said twice rather than not at all:
 * when the holder's mark comes later than a grace period after another found
 * the stream gone, or when an instance closes before the mark came (it reads
 * the marks once then).
 */
import type { Logger } from '../logger.js';
import { type Connection, evalScript } from './driver.js';
import { sinkWideKeys, streamKey } from './keys.js';
import { NO_OBITUARY } from './lossScripts.js';
import { NOW } from './lua.js';
import { errorText } from './redisErrors.js';
import { str } from './replies.js';
import { Script } from './script.js';
import { within } from './sinkLeave.js';
import type { SinkStream } from './sinkState.js';

/**
 * How long a mark is kept, in grace periods: an instance waits a grace period
 * for it and takes marks up to a grace period older than its wait.
 */
export const MARK_GRACES = 4;

/**
 * Marks the expiry of stream key `ARGV[1]` reported now (server time) in the
 * sink's `reported` sorted set (`KEYS[1]`), forgets marks older than
 * `ARGV[2]` ms, and lets the key expire then. Returns the time.
 */
export const markReported = new Script(
  'markReported',
  `${NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now`,
);

/** The server time and the marks of stream keys `ARGV` in the sink's `reported` set (`KEYS[1]`): {now, {ms or nil, ...}}. */
const readReported = new Script(
  'readReported',
  `${NOW}
return {now, redis.call('ZMSCORE', KEYS[1], unpack(ARGV))}`,
);

/** The marks of a reply (ZMSCORE of the keys of `names`, in order) as stream name -> server ms. */
export function marksOf(names: readonly string[], reply: unknown): Map<string, number> {
  const marks = new Map<string, number>();
  const scores = Array.isArray(reply) ? reply : [];
  names.forEach((name, i) => {
    const v = scores[i];
    if (v !== null && v !== undefined && v !== false) marks.set(name, Number(str(v)));
  });
  return marks;
}

/** What marking needs of a sink instance. */
export interface MarkHost {
  /** The sink's name. */
  readonly name: string;
  readonly control: Connection;
  readonly logger: Logger;
}

/**
 * Tells the other instances of sink `host` that the expiry of `stream` is
 * reported (see `markReported`); a failure is logged: another instance may
 * then report it too (said twice, not lost).
 */
export function markStreamReported(host: MarkHost, stream: string, graceMs: number): void {
  const key = sinkWideKeys(host.name).reported;
  evalScript(host.control, markReported, [key], [streamKey(stream), MARK_GRACES * graceMs]).catch((err: unknown) => {
    host.logger.warn({ stream, err: errorText(err) }, 'could not mark an expiry reported: another instance may report it too');
  });
}

/** Reads the marks of `names` now: {server time, stream name -> ms}. */
export async function readMarks(
  conn: Connection,
  sinkName: string,
  names: readonly string[],
): Promise<{ now: number; reported: Map<string, number> }> {
  const r = (await evalScript(conn, readReported, [sinkWideKeys(sinkName).reported], names.map(streamKey))) as unknown[];
  return { now: Number(r[0]), reported: marksOf(names, r[1]) };
}

/**
 * The instance that stream `s`'s expiry loss is left to: another held the
 * lease at this one's last check (`checked`: it made one of the key that went),
 * or at its last sweep when it made none ('' when unknown). Undefined when this instance (`me`) reports itself
 * (`lostWhenGone`), and after `destroy()` (`obituary` from `takeObituary`),
 * which says it exactly.
 */
export function reportLeftTo(s: SinkStream, obituary: number, me: string, checked: boolean): string | undefined {
  if (obituary !== NO_OBITUARY) return undefined;
  if ((checked ? s.leaseAtCheck : s.leaseHeld) !== false) return undefined;
  const holder = (checked ? s.holderAtCheck : s.leaseHolder) ?? '';
  // The sweep that found the key gone said "not held" without looking: this one held it.
  return holder === me ? undefined : holder;
}

/** An expiry loss left to the lease holder at this instance's check. */
interface Left {
  readonly stream: string;
  /** -1: unknown (this instance made no check of the stream). */
  readonly count: number;
  readonly why: string;
  /** The last liveness call sent when it was left: only a later one says when the wait began. */
  readonly after: number;
  /** When it was left (`performance.now()`), for when no liveness call goes through. */
  readonly at: number;
  /** Server time of the first liveness call sent after it was left. */
  since: number | undefined;
}

/** Expiry losses this instance left to another, reported if no mark says that one did. */
export class HolderWatch {
  #left: Left[] = [];
  /** Liveness calls sent so far. */
  #sent = 0;
  #closed = false;

  constructor(
    /** The sink's grace period (ms): how long to wait for the mark, and how old a mark may be. */
    private readonly graceMs: number,
    /** Counts and reports the loss, and marks it reported (-1: how many is unknown). */
    private readonly report: (stream: string, count: number, why: string) => void,
  ) {}

  /** The streams (by name) whose marks a loss waits for. */
  waitingFor(): string[] {
    return [...new Set(this.#left.map((l) => l.stream))];
  }

  /** A liveness call is about to be sent: its number, for `beat`. */
  sending(): number {
    return ++this.#sent;
  }

  /** Leaves `count` events (-1: unknown) gone with `stream` to the holder at the last check. */
  leave(stream: string, count: number, why: string): void {
    if (count === 0) return;
    const left: Left = { stream, count, why, after: this.#sent, at: performance.now(), since: undefined };
    // After close no liveness call would decide it.
    if (this.#closed) this.#report(left);
    else this.#left.push(left);
  }

  /** Liveness call `call` answered at server time `now`, with the sink's marks (`reported`). */
  beat(call: number, now: number, reported: ReadonlyMap<string, number>): void {
    this.#left = this.#left.filter((l) => {
      if (l.since === undefined) {
        if (call <= l.after) return true;
        l.since = now;
      }
      if (this.#marked(l, l.since, reported)) return false;
      if (now - l.since < this.graceMs) return true;
      this.#report(l);
      return false;
    });
  }

  /**
   * A liveness call failed (its slot's node down...): the marks cannot be
   * read. What was left 2 grace periods ago or more, by this process's clock,
   * is reported rather than kept waiting for calls that may not come back.
   */
  unreadable(now = performance.now()): void {
    this.#left = this.#left.filter((l) => {
      if (now - l.at < 2 * this.graceMs) return true;
      this.#report(l);
      return false;
    });
  }

  /**
   * The sink closes: what waits is reported unless a mark says another
   * reported it (`marks` read now; undefined when they could not be read).
   */
  flush(marks?: { now: number; reported: ReadonlyMap<string, number> }): void {
    this.#closed = true;
    const left = this.#left;
    this.#left = [];
    for (const l of left) if (!marks || !this.#marked(l, l.since ?? marks.now, marks.reported)) this.#report(l);
  }

  /** A mark of `l`'s stream no older than a grace period before `since`: this expiry's, not an earlier one's. */
  #marked(l: Left, since: number, reported: ReadonlyMap<string, number>): boolean {
    const at = reported.get(l.stream);
    return at !== undefined && at >= since - this.graceMs;
  }

  #report(l: Left): void {
    try {
      this.report(l.stream, l.count, l.why);
    } catch {
      // The user's logger threw: the count is in the counters; the other losses still go.
    }
  }
}

/** What a sink instance's watch needs of it. */
export interface WatchHost extends MarkHost {
  countLost(stream: string, count: number, why: string): void;
  maybeLost(stream: string, why: string): void;
}

/** The watch of a sink instance: what it reports is counted (or said, when unknown) and marked reported. */
export function holderWatch(host: WatchHost, graceMs: number): HolderWatch {
  return new HolderWatch(graceMs, (stream, count, why) => {
    if (count < 0) return host.maybeLost(stream, why);
    host.countLost(stream, count, why);
    markStreamReported(host, stream, graceMs);
  });
}

/** The instance closes: what waits is decided on the marks as they are now (all reported if they cannot be read within 1 s). */
export async function closeWatch(watch: HolderWatch, host: WatchHost): Promise<void> {
  const names = watch.waitingFor();
  const marks =
    names.length > 0 ? await within(readMarks(host.control, host.name, names), 1000).catch(() => undefined) : undefined;
  watch.flush(marks);
}
