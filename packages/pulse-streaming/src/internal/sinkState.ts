/** The state a sink and its background work share. */
import type { SinkCounters } from '../counters.js';

export type { SinkCounters };

import { InvalidArgumentError } from '../errors.js';
import type { SinkOptions } from '../options.js';
import type { Outcome } from './batcher.js';
import { lastRemovalKey, positionsKey, removedKey, type SinkKeys, sinkKeys, sinkRegistryKey, streamKey } from './keys.js';
import { OPTION_NAMES } from './optionLists.js';
import { checkOptionNames } from './optionNames.js';
import { ReadLog } from './readLog.js';
import { type ReadSettings, readSettings } from './readOptions.js';
import type { RawEntry } from './replies.js';
import type { Sent } from './stallClock.js';
import type { StreamHandle } from './streamHandle.js';
import { checkBool, checkInt, checkName, checkOptionalInt } from './validate.js';

/** A stream a sink reads, and what the sink knows of it. */
export interface SinkStream {
  readonly stream: StreamHandle;
  readonly keys: SinkKeys;
  readonly registry: string;
  /** The stream's last-removal key and removed counts (see `removeEntries`). */
  readonly lastRemoval: string;
  readonly removed: string;
  /** The stream's group positions as trim checks left them (see `positionsKey`). */
  readonly positions: string;
  readonly deadKey: string;
  readonly deadName: string;
  /** False while the group is missing and the stream key is gone (NOGROUP). */
  ready: boolean;
  /**
   * `removeStream` took the stream out of this sink: no check still out for it
   * may create its group again (see `recreate`).
   */
  left: boolean;
  /** The group's last-delivered ID as of our last trim check (see `checkTrimmed`). */
  checked: string | undefined;
  /** The last ID this instance read from the stream. */
  lastRead: string | undefined;
  /** What this instance read of the stream since its last trim check (see readLog.ts). */
  readonly readLog: ReadLog;
  /**
   * The first entry of the key created anew, once what went with the old
   * one was reported: IDs read before it are the old key's (see sinkRecreate.ts).
   */
  anewAt: string | undefined;
  /**
   * Blocking reads delivered entries after `from` up to `to` that no trim
   * check has verified yet (nothing jumped in between).
   */
  unverified: { readonly from: string; to: string } | undefined;
  /** False after a reconnect until a trim check resynced the group's entries-read (see `checkTrimmed`). */
  trusted: boolean;
  /** Events of the group not read yet as of the last trim check (-1: unknown). */
  lag: number;
  /** Events of the group read and not acked yet as of the last trim check. */
  pending: number;
  /** The group's last-delivered ID at the last trim check: events up to it that were pending then. */
  pendingUpTo: string | undefined;
  /** The stream's last entry at the last trim check ('0-0': empty): events after it are in no estimate of it (see `SinkHolds.streamGone`). */
  tailAtCheck: string | undefined;
  /** Of those, how many this instance has acked since (they are not lost with the stream). */
  ackedSinceCheck: number;
  /** When the last trim check's reply was applied (`performance.now()`): only acks sent after it ran after it. */
  checkAppliedAt: number;
  /** An ack answered then may have run before the last check: a check sent after it is wanted (see expiryLoss.ts). */
  recheckAfter: number | undefined;
  /** When this instance's last XACK on the stream was answered (`performance.now()`, 0 none). */
  lastAckAt: number;
  /** When the stream expires, as its last trim check said (`performance.now()`; undefined: no time to live). */
  expiresAt: number | undefined;
  /**
   * Whether this instance held the lease at the last trim check (while the
   * stream still existed); undefined when no sweep had told it yet.
   */
  leaseAtCheck: boolean | undefined;
  /** The stream's entries-added as of the last trim check (-1: unknown): smaller later means the key was created anew. */
  added: number;
  /** The last trim check could not tell how many events were lost, and that was logged. */
  unknownReported: boolean;
  /**
   * The rollbacks of Redis this instance found, each the IDs it may have held
   * that Redis lost: after what the stream had generated once rolled back
   * (`after`: entries the snapshot never had), up to what this instance had
   * read (`upTo`). Such an event, pending for no one and gone from the
   * stream, is kept and handed out, not taken for one another consumer took
   * (see `SinkHolds.holdOwned`); one the snapshot kept follows the usual
   * rules (it may have been taken over and acked since). At most a few.
   */
  rolledBack: Array<{ readonly after: string; readonly upTo: string }>;
  /**
   * Events this instance let go of unhandled (given back before any code saw
   * them, or nacked) and not delivered to it again since, each with the
   * sequence number of its sink's `LetGoLog` (which bounds them): a loss
   * Redis makes of them leaves them pending for no one, which no read, claim
   * or check of this instance would find (see letGo.ts).
   */
  letGo: Map<string, number>;
  /** The newest event of `letGo` its bound made it forget (see `LetGoLog`). */
  letGoForgotten: string | undefined;
  /**
   * `lastRead` when a reconnect was first noticed, until the check after it
   * (a resync) looked whether Redis still has that entry (see `afterReconnect`).
   */
  readBeforeReconnect: string | undefined;
  /** A loss of the stream's key was counted since the last reconnect (see `SinkHolds.streamGone`). */
  lossCounted: boolean;
  /**
   * Events this instance let go of (a nack, a dead letter) whose consumer
   * group was gone (NOGROUP), no longer in the stream, and not known then to
   * be lost by Redis: the read path may find the restart without persistence
   * that took them only later (a nack's check can come first). Counted lost
   * when a loss it remembers covers them (see `rolledBack` and
   * `countCovered` in sinkRollback.ts), dropped when the read path has
   * accounted for the stream's key or group going (see `forgetUnsure`).
   */
  goneUnsure: Map<string, GoneUnsure>;
  /** Whether this instance holds the lease, as its last sweep said; undefined until a sweep has said. */
  leaseHeld: boolean | undefined;
  /** The instance holding the lease, as the last sweep said (undefined: unknown). */
  leaseHolder: string | undefined;
  /** `leaseHolder` at the last trim check: if it is no longer live when the stream is gone, it will not report. */
  holderAtCheck: string | undefined;
  /** The stream had a time to live at its last sweep (its bookkeeping keys follow it). */
  hadTtl: boolean;
  /** What the sweeps know of the stream, to sweep it only while something may wait there (see sinkMaintenance.ts). */
  readonly sweep: StreamSweep;
}

/** What the sweeps know of a stream. */
export interface StreamSweep {
  /** Sweep it at the next sweep (a new stream, or one whose key is back). */
  next: boolean;
  /** `lastRead` at its last sweep: a stream read since may have events of ours outstanding. */
  read: string | undefined;
  /** Events pending for this consumer at its last sweep. */
  mine: number;
  /** Sweep it until then (ms): a read reply may have been lost (pending entries this instance never saw), or an instance just went stale (its events turn idle). */
  until: number;
  /** Consumers of instances not live still in the group at its last cleanup. */
  left: number;
  /** Clean up until then (ms): an instance went stale and its consumer is not gone yet. */
  cleanupUntil: number;
  /**
   * Until then, cleanups go on even when the last found no consumer of an
   * instance not live: an instance just seen stale still counts as live for
   * a while (its consumer is not "left" yet), and stopping then kept it in
   * the group until the backstop (10 s per stream) came round.
   */
  cleanupFloor: number;
}

/** Sink options, validated, with defaults applied. */
export interface SinkSettings extends ReadSettings {
  readonly noAck: boolean;
  readonly graceMs: number;
  readonly maxDeliveries: number | undefined;
  readonly deadLetterStream: string | undefined;
}

/**
 * Longest ack grace period: 2^31-1 ms (about 24.8 days), the longest a
 * Node.js timer can wait. The sink's timers derive from it; above it they
 * would fire after 1 ms (a polling loop on Redis), and an XCLAIM idle time
 * beyond the epoch would make a nack redeliver never.
 */
export const MAX_GRACE_MS = 2 ** 31 - 1;

export function sinkSettings(options: SinkOptions): SinkSettings {
  checkOptionNames('newSink', options, OPTION_NAMES.newSink);
  const graceMs = checkInt('ackGracePeriodMs', options.ackGracePeriodMs, 20000, 1);
  if (graceMs > MAX_GRACE_MS) {
    throw new InvalidArgumentError(
      `ackGracePeriodMs must be at most ${MAX_GRACE_MS} (about 24.8 days, the longest a timer can wait), got ${graceMs}`,
    );
  }
  const deadLetterStream =
    options.deadLetterStream === undefined ? undefined : checkName('deadLetterStream', options.deadLetterStream);
  return {
    ...readSettings(options),
    noAck: checkBool('noAck', options.noAck, false),
    graceMs,
    maxDeliveries: checkOptionalInt('maxDeliveries', options.maxDeliveries, 1),
    deadLetterStream,
  };
}

/**
 * Hands entries a sink read or claimed to its subscribers. `counts` is their
 * delivery count, one for all or one each; `sent` says when and how the
 * command that read or claimed them was sent (see `StallClock.heldAt`).
 */
export type Deliver = (
  s: SinkStream,
  entries: readonly RawEntry[],
  counts: number | readonly number[],
  redelivery: boolean,
  sent?: Sent,
) => void;

/** A new instance's counters: nothing seen yet. */
export function newSinkCounters(): SinkCounters {
  return { delivered: 0, redelivered: 0, acked: 0, deadLettered: 0, lost: 0, filtered: 0, staleAcks: 0 };
}

/** An event let go of whose consumer group was gone, not known lost by Redis when found (see `SinkStream.goneUnsure`). */
export interface GoneUnsure {
  /** How this instance let it go (a nack, a dead letter...). */
  readonly how: string;
  /** Counts events `ids` of the stream lost, reported with `why` (see `SinkHolds.countLost`). */
  readonly count: (ids: readonly string[], why: string) => void;
}

/** What a sink knows of a stream it starts reading. */
export function newSinkStream(sinkName: string, settings: SinkSettings, stream: StreamHandle): SinkStream {
  const deadName = settings.deadLetterStream ?? `${stream.name}:dead`;
  return {
    stream,
    keys: sinkKeys(stream.name, sinkName),
    registry: sinkRegistryKey(stream.name),
    lastRemoval: lastRemovalKey(stream.name),
    removed: removedKey(stream.name),
    positions: positionsKey(stream.name),
    deadName,
    deadKey: streamKey(deadName),
    ready: true,
    left: false,
    checked: undefined,
    lastRead: undefined,
    readLog: new ReadLog(),
    anewAt: undefined,
    unverified: undefined,
    trusted: true,
    unknownReported: false,
    rolledBack: [],
    letGo: new Map(),
    letGoForgotten: undefined,
    readBeforeReconnect: undefined,
    lossCounted: false,
    goneUnsure: new Map(),
    lag: -1,
    pending: 0,
    pendingUpTo: undefined,
    tailAtCheck: undefined,
    ackedSinceCheck: 0,
    checkAppliedAt: 0,
    recheckAfter: undefined,
    lastAckAt: 0,
    expiresAt: undefined,
    leaseAtCheck: undefined,
    added: -1,
    leaseHeld: undefined,
    leaseHolder: undefined,
    holderAtCheck: undefined,
    hadTtl: false,
    sweep: { next: true, read: undefined, mine: 0, until: 0, left: 0, cleanupUntil: 0, cleanupFloor: 0 },
  };
}

/** What a sink's read brings to `SinkReads.onReply` (sinkRead.ts): the streams read, the replies, and when. */
export interface SinkReadResult {
  streams: SinkStream[];
  got: Outcome | undefined;
  checked: Outcome | undefined;
  blocking: boolean;
  /** Read without a trim check though not blocking (its slot migrates: migratingRead.ts); verified later. */
  unchecked?: boolean;
  count: number;
  /** When the read was sent (absent: a stale read that was not). */
  sentAt?: number;
  /** When its trim check was sent (`performance.now()`). */
  checkAt?: number;
  /** Per stream, what this instance had read when the check was sent (`lastRead`). */
  readAt?: Array<string | undefined>;
  /** `SinkReads.#reconnectsNow()` when the check was made. */
  epoch?: number;
  /** Drained streams probed for one entry each, without a check (readRotation.ts), and the reply. */
  probe?: SinkStream[];
  probed?: Outcome;
}

/**
 * A sink instance not seen for this many of its grace periods is forgotten
 * by the others (sinkLiveness.ts), and the sink-wide keys expire this many
 * grace periods after the last call that wrote them.
 */
export const FORGET_GRACES = 20;
