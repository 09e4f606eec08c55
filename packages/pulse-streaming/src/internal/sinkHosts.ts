/** The sink as its background work sees it: the parts of a `Sink` that `SinkMaintenance` uses. */
import type { PulseError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { Connection, Driver, OwnedConnection } from './driver.js';
import type { Fanout } from './fanout.js';
import { heldHere, holdsAny } from './heldHere.js';
import type { ReadLoops } from './loops.js';
import { errorText, isRetryable } from './redisErrors.js';
import type { SinkHolds } from './sinkHolds.js';
import type { Leaver } from './sinkLeave.js';
import type { SinkReads } from './sinkRead.js';
import type { Deliver, SinkCounters, SinkSettings, SinkStream } from './sinkState.js';

/** What a sink's background work shares with the sink as it is: its names, settings, connections and counters. */
export interface SinkBasics {
  readonly name: string;
  readonly consumerName: string;
  readonly settings: SinkSettings;
  readonly control: OwnedConnection;
  readonly driver: Driver;
  readonly logger: Logger;
  /** Whether the user gave a logger: else warnings that must not be silent are process warnings. */
  readonly hasLogger: boolean;
  readonly counters: SinkCounters;
  readonly fanout: Fanout<SinkEvent>;
  /** What the sink's reads sent ahead may still bring (`ReadAhead.ahead`, shared by its read loops). */
  readonly readAhead: { readonly ahead: number };
}

/** What the background work needs from its sink. */
export interface MaintenanceHost extends SinkBasics {
  streams(): Iterable<SinkStream>;
  readonly deliver: Deliver;
  /** Sets the idle time of our own pending events of stream `name`; returns those gone from the stream. */
  touch(conn: Connection, name: string, idleMs: number, ids: string[]): Promise<string[]>;
  reportGone(key: string, ids: string[], why: string): Promise<void>;
  /** The IDs of `ids` that still wait in a subscription buffer for stream `name`. */
  stillBuffered(name: string, ids: readonly string[]): string[];
  /** Holds buffered events of stream `name` that are still ours, drops the others (see `SinkHolds.holdOwned`). */
  holdOwned(name: string, ids: readonly string[]): Promise<void>;
  /** Takes events of stream `name` out of every subscription buffer; returns the IDs that were in one. */
  dropBuffered(name: string, ids: readonly string[]): string[];
  /**
   * Of `ids` (events of stream `name` the claim sent at `since` took, leaving them the delivery
   * counts `countOf`), those this instance holds: a handler runs them, a held buffer has them, their
   * ack, nack or dead letter is under way or landed since (heldHere.ts).
   */
  heldHere(name: string, ids: readonly string[], since: number, countOf: ReadonlyMap<string, number>): Set<string>;
  /** A claim of stream `name` goes out: returns the `since` of `heldHere` and `claimDone` (heldHere.ts `RunningEvents`). */
  claimSent(name: string): number;
  /** The claim of stream `name` sent at `since` handed out all it took. */
  claimDone(name: string, since: number): void;
  /** Whether this instance holds any event of stream `name` now: running, buffered, being settled (heldHere.ts). */
  holdsAny(name: string): boolean;
  /** Counts and reports events of stream `name` found lost. */
  countLost(name: string, count: number, why: string, ids?: readonly string[]): void;
  /** Reports that events of stream `name` may be lost, how many unknown. */
  maybeLost(name: string, why: string, ids?: readonly string[]): void;
  /** Reads a stream again once its key is back. */
  resume(s: SinkStream): Promise<void>;
  /** The stream `name` or its group is missing: lets the read path find out and account for it now. */
  recover(name: string): Promise<void>;
  /** Counts what blocking reads may have jumped over since the last trim check. */
  verifyReads(): Promise<void>;
  /** How many times the sink's connections reconnected: a read reply may have been lost each time. */
  reconnects(): number;
  /** Ends the sink and its subscriptions with `err`: Redis refused something for good. */
  fail(err: PulseError): void;
  /** What leaving a stream's group needs (the streams removeStream left behind). */
  leaver(): Leaver;
}

/** What a sink is made of, for its background work. */
export interface SinkParts extends SinkBasics {
  readonly streams: ReadonlyMap<string, SinkStream>;
  readonly holds: SinkHolds;
  readonly reads: SinkReads;
  readonly loops: ReadLoops<SinkEvent>;
  /** Lets the read path check stream `name` now (see `SinkReads.recover`). */
  recover(name: string): Promise<void>;
  fail(err: PulseError): void;
  leaver(): Leaver;
}

export function maintenanceHost(p: SinkParts): MaintenanceHost {
  // passed: what the background work takes as it is (SinkBasics and recover).
  const { holds, reads, loops, streams, ...passed } = p;
  return {
    ...passed,
    verifyReads: () => reads.verifyReads([...streams.values()]),
    reconnects: () => p.control.reconnects() + loops.reconnects(),
    streams: () => streams.values(),
    deliver: (s, entries, counts, redelivery, sent) => holds.deliver(s, entries, counts, redelivery, sent),
    touch: (conn, name, idleMs, ids) => holds.touch(conn, name, idleMs, ids),
    dropBuffered: (name, ids) => holds.dropBuffered(name, ids),
    heldHere: (name, ids, since, countOf) => heldHere(p.fanout, holds.running, name, ids, since, countOf),
    claimSent: (name) => holds.running.claimSent(name),
    claimDone: (name, since) => holds.running.claimDone(name, since),
    holdsAny: (name) => holdsAny(p.fanout, holds.running, name),
    holdOwned: (name, ids) => holds.holdOwned(name, ids),
    stillBuffered: (name, ids) => holds.stillBuffered(name, ids),
    reportGone: (key, ids, why) => holds.reportGone(key, ids, why),
    countLost: (name, count, why, ids) => holds.countLost(name, count, why, ids),
    maybeLost: (name, why, ids) => holds.maybeLost(name, why, ids),
    resume: async (s) => {
      reads.wake(loops.groupOf(s.stream.key));
      await loops.add(s.stream.key);
    },
  };
}

/**
 * The background work (a sweep, a claim) found stream `s` without its key
 * or group. The read path finds that out and accounts for it, but it reads
 * only while a subscription has room: with none (a `for await` loop left,
 * a `process()` aborted, between runs), nothing was said of what a destroy
 * took from this instance until a subscriber came back, and never if the
 * instance closed first. Then the stream's check runs here (`recover`):
 * what went with a gone key is reported (a destroy's obituary taken), a
 * group destroyed on a living key is made again. Returns false when that
 * check failed (said): the caller looks again later. A check Redis refuses
 * for good throws, to end the sink as the background work's own calls do.
 */
export async function recoverUnread(
  host: Pick<MaintenanceHost, 'fanout' | 'recover' | 'logger'>,
  s: SinkStream,
): Promise<boolean> {
  if (host.fanout.ready()) return true;
  try {
    await host.recover(s.stream.name);
    return true;
  } catch (err) {
    if (!isRetryable(err)) throw err;
    host.logger.warn(
      { stream: s.stream.name, err: errorText(err) },
      'stream or its group found missing, and the check that reports what went with it failed: looked at again',
    );
    return false;
  }
}

/**
 * `check` (of one stream, by name) one at a time per stream: a call while
 * one runs waits for it and then runs its own, which starts after the call
 * (so it sees what the caller saw); calls made meanwhile share that one.
 * The background paths that find a key or group missing (holds, ownership
 * checks, sweeps, claims, give-backs) each ask for the stream's check, often
 * at once: checks applied concurrently each saw the key gone or created anew
 * before either marked it, and each reported what went with it (a loss
 * counted twice, the group made again twice).
 */
export function oneAtATime(check: (name: string) => Promise<void>): (name: string) => Promise<void> {
  const byName = new Map<string, { tail: Promise<void>; waiting: Promise<void> | undefined }>();
  const settle = (name: string, p: Promise<void>): void => {
    const done = (): void => {
      const st = byName.get(name);
      if (st?.tail === p) byName.delete(name);
    };
    p.then(done, done);
  };
  return (name) => {
    const st = byName.get(name);
    if (st === undefined) {
      const p = check(name);
      byName.set(name, { tail: p, waiting: undefined });
      settle(name, p);
      return p;
    }
    if (st.waiting !== undefined) return st.waiting;
    const w = st.tail
      .catch(() => {})
      .then(() => {
        st.waiting = undefined;
        return check(name);
      });
    st.waiting = w;
    st.tail = w;
    settle(name, w);
    return w;
  };
}
