/**
 * A sink's trim check, applied: what `checkTrimmed` found about one stream
 * (events trimmed or removed before the sink read them, a key created anew
 * or rolled back, a missing key or group) turned into losses said, recovery
 * and the stream's new state. Both the read loop and the control
 * connection's checks (`verifyReads`, `recover`) land here.
 */
import { PulseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Arg, OwnedConnection } from './driver.js';
import { recordCheck } from './expiryLoss.js';
import { compareIds, maxId } from './ids.js';
import { checkTrimmed } from './lossScripts.js';
import { str } from './replies.js';
import { recreate } from './sinkRecreate.js';
import { afterReconnect, fell } from './sinkRollback.js';
import type { SinkStream } from './sinkState.js';
import { streamNow } from './streamNow.js';

/** Most entries the trim check copies into Lua to verify a blocking read (usually none: it took all there was). */
const VERIFY_MAX_ENTRIES = 256;

/**
 * The trim check (`checkTrimmed`) of sink `group`'s `streams`, verifying what blocking reads
 * delivered since the last check, resyncing those not trusted; `alone`: of one stream on its key
 * alone (its slot migrates and the other keys may be on the other node).
 */
export function trimCheckCommand(group: string, streams: readonly SinkStream[], alone = false): Arg[] {
  // EVAL, not EVALSHA: a NOSCRIPT inside MULTI would let the read run unchecked.
  const cmd: Arg[] = ['EVAL', checkTrimmed.source, alone ? 1 : 4 * streams.length];
  for (const s of streams) cmd.push(s.stream.key, ...(alone ? [] : [s.lastRemoval, s.removed, s.positions]));
  cmd.push(group, VERIFY_MAX_ENTRIES);
  for (const s of streams) cmd.push(s.trusted ? (s.unverified?.from ?? '') : 'r');
  return cmd;
}

/** What applying a trim check needs from its sink. */
export interface TrimCheckHost {
  readonly name: string;
  readonly consumerName: string;
  readonly control: OwnedConnection;
  readonly logger: Logger;
  /** Counts and reports events of stream `name` found lost. */
  countLost(name: string, count: number, why: string, ids?: readonly string[]): void;
  /** Reports that events of stream `name` may be lost, how many unknown (`LossReport.unknown`). */
  maybeLost(name: string, why: string, ids?: readonly string[]): void;
  /** A trim check of `s` was applied (see `Rechecks.expiring`). */
  checked(s: SinkStream): void;
  /** The stream's key is gone, or was created anew: reports what went with the old one (see `SinkHolds.streamGone`). */
  streamGone(s: SinkStream, before: string | undefined): Promise<void>;
  /** Stops the sink: a condition retrying cannot fix. */
  fail(err: PulseError): void;
  /** The IDs of stream `name` this instance holds now (see `RecreateHost.heldNow`). */
  heldNow?(name: string): ReadonlySet<string>;
}

/**
 * Acts on one stream's trim check result (`checkTrimmed`): counts what was
 * trimmed or removed before the sink read it, notices a stream created anew
 * or rolled back, a missing key or group; returns the check's status.
 * `sentAt` is when the check was sent, `readAt` what this instance had read
 * of the stream then; `madeBefore`: see `SinkReads.#madeBefore`.
 */
export async function applyTrimCheck(
  host: TrimCheckHost,
  s: SinkStream,
  r: unknown[],
  sentAt: number,
  readAt: string | undefined,
  madeBefore = false,
): Promise<string> {
  const status = str(r[0]);
  if (status === 'ok') {
    // A check made trusting the group's entries-read and answered after the node changed (maybe by
    // another node) counts nothing and verifies nothing: the next check resyncs.
    const skipped = madeBefore ? 0 : Number(r[1]);
    if (skipped > 0) host.countLost(s.stream.name, skipped, 'events trimmed before this sink read them');
    const removed = madeBefore ? 0 : Number(r[5] ?? 0);
    if (removed > 0) host.countLost(s.stream.name, removed, 'events removed (stream.remove) before this sink read them');
    const last = str(r[2]);
    const verified = !madeBefore && Number(r[3]) === 1;
    // Where the group was before this check: a stream that still starts before it is the same key.
    const checkedBefore = s.checked;
    const lagBefore = s.lag;
    s.checked = last;
    const lag = Number(r[6] ?? -1);
    const read = Number(r[7] ?? -1);
    // Redis reports lag 0 for a caught-up group whatever its entries-read,
    // which is stale until a resync after a restart: only a trusted check
    // tells entries-added.
    const added = s.trusted && lag >= 0 && read >= 0 ? read + lag : -1;
    // Fewer entries ever added than before: the key expired or was deleted
    // and a producer created it anew (another instance recreated the group),
    // or this reply is older than the one acted on before it (the read
    // loop's and the control connection's checks race; a reply can wait
    // through a reconnect or a frozen event loop). Only a fresh read tells
    // them apart: a loss is reported on current evidence only.
    let stale = false;
    // False while a resync could not read the stream: it stays untrusted, and the next check resyncs.
    let resynced = true;
    if (added >= 0 && s.added >= 0 && added < s.added) {
      const now = await streamNow(host.control, s.stream.key);
      if (now.added < s.added) await fell(host, s, now, str(r[8] ?? '') || now.first, maxId(readAt, checkedBefore), lagBefore);
      // Not created anew, or unknown now (a later check sees the fall again):
      // the newer state stays, so a real fall is still seen against it.
      else stale = true;
    } else if (!s.trusted) {
      // The first check after a reconnect (a resync: entries-read cannot be
      // trusted yet) still compares the stream with what was known before
      // it, or a Redis restarted from an older snapshot would take unread
      // and held events without a word (outside review C).
      resynced = await afterReconnect(host, s, maxId(readAt, checkedBefore), lagBefore);
    }
    if (!stale) {
      recordCheck(s, lag, Number(r[9] ?? 0), last, sentAt, Number(r[10] ?? -1), str(r[11] ?? '') || '0-0');
      // While untrusted, the last trusted entries-added stays: what a later
      // resync compares the stream with (see `afterReconnect`).
      if (s.trusted) s.added = added;
      // The positions kept from now on are at or past it (see readLog.ts).
      s.readLog.prune(last);
      host.checked(s);
    }
    // Said once until the condition clears, not at every read.
    const unknown = Number(r[4]) === 1;
    if (unknown && !s.unknownReported)
      host.maybeLost(
        s.stream.name,
        'events trimmed or deleted before this sink read them: how many is unknown (Redis restarted or failed over, or entries were deleted outside pulse-streaming)',
      );
    s.unknownReported = unknown;
    // Resynced: what blocking reads jumped before it can no longer be counted.
    if (!s.trusted && verified && resynced) s.trusted = true;
    if (verified && s.unverified) {
      // Verified up to where the group was at the check; reads after it stay to verify.
      s.unverified = compareIds(last, s.unverified.to) >= 0 ? undefined : { from: last, to: s.unverified.to };
    }
  } else if (status === 'wrongtype') {
    host.fail(new PulseError(`sink stopped: key ${s.stream.key} holds another type`, { code: 'WRONGTYPE' }));
  } else if (status === 'nokey') {
    // A 'nokey' reply may be older than a check already acted on for a key
    // created anew since (replies race across connections): with the key
    // there now, only a confirmed fall in entries-added says the old one's
    // events went (as in `recreate`); otherwise the reply is stale.
    const now = s.ready ? await streamNow(host.control, s.stream.key) : undefined;
    if (now?.exists) {
      if (s.added >= 0 && now.added < s.added) {
        await host.streamGone(s, now.first);
        // Reported: the NOGROUP that follows on the new key must not report it again (`recreate`).
        s.added = now.added;
        s.anewAt = now.first;
      }
    } else if (s.ready) {
      host.logger.warn({ stream: s.stream.name }, 'stream key is gone: waiting for it to be created again');
      s.ready = false;
      await host.streamGone(s, undefined);
    }
  } else if (status === 'nogroup') {
    await recreate(host, s);
  }
  return status;
}
