/**
 * A sink's group missing on a stream (NOGROUP): recreated at 0 when the key
 * is there (nothing lost, duplicates possible), reported gone when it is not.
 */
import type { Logger } from '../logger.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { compareIds, maxId, previousId } from './ids.js';
import { forgetIds } from './letGo.js';
import { str } from './replies.js';
import { recreateGroup } from './scripts.js';
import { forgetUnsure, goneWhileMissing, goneWithKey } from './sinkRollback.js';
import type { SinkStream } from './sinkState.js';
import { slotOf } from './slot.js';
import { streamNow } from './streamNow.js';

/** What recreating a group needs of the sink's read path. */
export interface RecreateHost {
  readonly name: string;
  readonly consumerName: string;
  readonly control: OwnedConnection;
  readonly logger: Logger;
  /** The stream's key is gone, or was created anew: reports what went with the old one. */
  streamGone(s: SinkStream, before: string | undefined): Promise<void>;
  /** Reports that events of stream `name` may be lost, how many unknown. */
  maybeLost(name: string, why: string, ids?: readonly string[]): void;
  /** Counts and reports events of stream `name` found lost. */
  countLost(name: string, count: number, why: string, ids?: readonly string[]): void;
  /** The IDs of stream `name` this instance holds now: a handler runs them, a buffer has them (heldHere.ts). */
  heldNow?(name: string): ReadonlySet<string>;
}

/** Recreations under way, per stream: a NOGROUP met while one runs joins it. */
const recreating = new WeakMap<SinkStream, Promise<void>>();

/**
 * NOGROUP: recreate the group at 0 if the stream key exists (nothing lost),
 * else wait for the key. Once at a time per stream: the read loop's check
 * and a recovery's may meet the same NOGROUP, and two at once each reported
 * the old key's events lost (the second with the estimate of a check of the
 * new key made meanwhile: 23 of 20 under load).
 */
export function recreate(host: RecreateHost, s: SinkStream): Promise<void> {
  // Its group was destroyed by removeStream: a check of it still out then (the likeliest path; seen
  // once in a full run of sink.test.ts, not reproduced) made the group again at 0, with this
  // consumer in it, on a stream the sink no longer reads.
  if (s.left) return Promise.resolve();
  const running = recreating.get(s);
  if (running) return running;
  const done = recreateOnce(host, s).finally(() => recreating.delete(s));
  recreating.set(s, done);
  return done;
}

async function recreateOnce(host: RecreateHost, s: SinkStream): Promise<void> {
  // A group gone with its key: Go's Destroy may have moved Go's services to another key (goLifecycle.ts).
  s.stream.goLifecycle.recheck();
  // A key created anew (expired or destroyed, then added to again) took the
  // old group's unread and pending events with it; a group destroyed on a
  // living key gives them all back from 0.
  let reported = false;
  if (s.ready && s.added >= 0) {
    const now = await streamNow(host.control, s.stream.key);
    if (now.added < s.added) {
      await host.streamGone(s, now.first);
      s.anewAt = now.first;
      reported = true;
    }
  }
  const keys = [s.stream.key, s.registry, s.keys.consumers, s.positions, s.keys.delays];
  const r = (await evalScript(host.control, recreateGroup, keys, [host.name, host.consumerName, '1'])) as unknown[];
  const ok = Number(r[0]) === 1;
  // Made by this call: it counts what went while the group was missing (only one call makes it).
  if (ok && Number(r[1]) === 1) reported = (await missingGroupLosses(host, s, r, reported)) || reported;
  // The group starts over at 0: what was checked of the old one says nothing of it.
  s.checked = undefined;
  s.unverified = undefined;
  s.added = -1;
  s.lag = -1;
  s.readLog.clear();
  if (ok) {
    // Found after a reconnect with no check since (Redis restarted without persistence, then a
    // producer's add): an event this instance read before it that is neither pending nor in the
    // stream now is one nothing redelivers, and no estimate counted it: its nack or dead letter
    // counts it lost; what it had not read is said lost, how many unknown. Without a reconnect,
    // what went with the key was reported by the check that found it gone (counting it here too
    // counted it twice).
    if (!reported) goneWithKey(s, (name, why, ids) => host.maybeLost(name, why, ids));
    // Accounted for: what a nack that met NOGROUP before this kept is counted or went another way.
    forgetUnsure(s);
    host.logger.warn({ stream: s.stream.name }, 'consumer group missing (NOGROUP): recreated at 0, events may be redelivered');
  } else {
    const was = s.ready;
    s.ready = false;
    host.logger.warn({ stream: s.stream.name }, 'stream key is gone (NOGROUP): waiting for it to be created again');
    if (was) await host.streamGone(s, undefined);
  }
}

/** Why the events trimmed while a group was missing are counted lost. */
const TRIMMED_WHILE_MISSING =
  'events trimmed or deleted while their consumer group was missing (destroyed by another program), before any consumer read them';
/** Why the entries of a key created anew that were trimmed before the sink's group was made on it are counted lost. */
const TRIMMED_BEFORE_GROUP =
  'events of the stream created anew, trimmed before the consumer group was made again on it: no consumer read them';
/** Why delayed nacks gone with a missing group are counted lost. */
const DELAYED_WHILE_MISSING =
  'events nacked with a delay, gone from the stream while their consumer group was missing: nothing can redeliver them';

/**
 * What went while the group of `s` was missing, from what the call that
 * made it again took (`recreateGroup`): returns true when the key was found
 * created anew (reported with `streamGone`), else counts the events trimmed
 * after the old group's last kept position that no consumer read (exactly
 * when this instance is the only consumer registered and knows its own
 * reads since; else said with how many at most), and the delayed nacks
 * whose entries went (after the last check's position when the key was
 * created anew: those before it are in its estimate).
 */
async function missingGroupLosses(host: RecreateHost, s: SinkStream, r: unknown[], reported: boolean): Promise<boolean> {
  const name = s.stream.name;
  const m = /^(\S+) (\d+)$/.exec(str(r[2]));
  const klast = m?.[1];
  const kread = m ? Number(m[2]) : 0;
  const added = Number(r[3]);
  const length = Number(r[4]);
  const first = str(r[5]) || undefined;
  const lastGen = str(r[6]);
  const maxDeleted = str(r[7]);
  const gone = (Array.isArray(r[8]) ? r[8] : []).map(str);
  const others = Number(r[9]);
  // Entries that left the stream (trimmed or deleted) in its life.
  const left = added - length;
  // The latest ID known to be in the old group's stream: this instance's last read, or the kept position.
  const known = maxId(s.lastRead, klast);
  let anew = false;
  // After a reconnect Redis may have restarted empty: what went is accounted for as such (`goneWithKey`).
  // And once the new key was found (a check that said the old one was gone), its old reads say nothing.
  const reportedAnew = s.anewAt !== undefined && known !== undefined && compareIds(known, s.anewAt) < 0;
  // Used once: the group made now is the new key's, and a later destroy of it is another incident.
  s.anewAt = undefined;
  if (!reported && !reportedAnew && s.readBeforeReconnect === undefined && known !== undefined && known !== '0-0') {
    // IDs went back, or everything up to an entry read went and fewer ever left: another key.
    const upTo = klast !== undefined && compareIds(klast, known) === 0 ? Math.max(kread, 1) : 1;
    anew = compareIds(known, lastGen) > 0 || (first !== undefined && compareIds(first, known) > 0 && left < upTo);
    if (anew) {
      await host.streamGone(s, first);
      s.anewAt = first;
    }
  }
  // Held here (a handler runs it, a buffer has it): counted when let go, not when acked (below).
  const held = host.heldNow?.(name);
  const unheld = held === undefined || held.size === 0 ? gone : gone.filter((id) => !held.has(id));
  const covered = reported || anew || reportedAnew ? s.pendingUpTo : undefined;
  const delayed = covered === undefined ? unheld : unheld.filter((id) => compareIds(id, covered) > 0);
  if (delayed.length > 0) {
    host.countLost(name, delayed.length, DELAYED_WHILE_MISSING, delayed);
    forgetIds(s, delayed);
  }
  if (reported || anew || reportedAnew) {
    // The new key's entries trimmed before this call made its group: no group of this sink was there to read them.
    if (left > 0) host.countLost(name, left, TRIMMED_BEFORE_GROUP);
    return anew;
  }
  // What this instance read of the entries gone (held, buffered, let go): a nack, a give-back or a
  // dead letter that finds one vanished counts it, an ack does not (it was handled).
  goneWhileMissing(s, first !== undefined ? previousId(first) : lastGen, (why, ids) => host.maybeLost(name, why, ids));
  if (klast === undefined) return false;
  // Nothing after the kept position left the stream: all of it is read again from 0.
  if (first !== undefined ? compareIds(first, klast) <= 0 : compareIds(lastGen, klast) <= 0) return false;
  if (compareIds(maxDeleted, klast) > 0) {
    host.maybeLost(name, `${TRIMMED_WHILE_MISSING}: how many is unknown (entries were deleted)`);
    return false;
  }
  const after = left - kread;
  if (after <= 0) return false;
  const mine = others === 0 ? s.readLog.between(klast, first) : undefined;
  if (mine === undefined) host.maybeLost(name, `${TRIMMED_WHILE_MISSING}: at most ${after}`);
  else if (after > mine) host.countLost(name, after - mine, TRIMMED_WHILE_MISSING);
  return false;
}

/**
 * Of `streams`, whose keys were gone, those that may be back: one `EXISTS`
 * for all (per slot on a cluster), and the recreating script only where a key
 * is there. A script per stream made two commands per gone stream every
 * `awaitMs` (up to 4 a second each, for as long as a destroyed stream stays
 * gone: 400 a second for 100 of them, outside review T).
 */
export async function keysBack(
  control: OwnedConnection,
  streams: readonly SinkStream[],
  cluster: boolean,
): Promise<SinkStream[]> {
  const bySlot = new Map<number, SinkStream[]>();
  for (const s of streams) {
    const slot = cluster ? slotOf(s.stream.key) : 0;
    const group = bySlot.get(slot);
    if (group) group.push(s);
    else bySlot.set(slot, [s]);
  }
  const back: SinkStream[] = [];
  for (const group of bySlot.values()) {
    const keys = group.map((s) => s.stream.key);
    if (Number(await control.send(['EXISTS', ...keys], keys[0])) > 0) back.push(...group);
  }
  return back;
}

/**
 * Stream `s`'s key was gone (NOGROUP): once a producer created it again, its
 * group is created anew at 0 (whatever the new stream holds is this sink's)
 * and it is read again. Returns whether it was.
 */
export async function groupBack(
  host: Pick<RecreateHost, 'name' | 'consumerName' | 'control' | 'logger' | 'countLost'>,
  s: SinkStream,
): Promise<boolean> {
  if (s.left) return false;
  const keys = [s.stream.key, s.registry, s.keys.consumers, s.positions, s.keys.delays];
  const r = (await evalScript(host.control, recreateGroup, keys, [host.name, host.consumerName, '1'])) as unknown[];
  if (Number(r[0]) !== 1) return false;
  // Made by this call: what the new key had trimmed before it was read by no consumer of this sink (what
  // went with the old key, its delayed nacks included, was reported when it was found gone).
  const left = Number(r[1]) === 1 ? Number(r[3]) - Number(r[4]) : 0;
  if (left > 0) host.countLost(s.stream.name, left, TRIMMED_BEFORE_GROUP);
  s.readLog.clear();
  s.ready = true;
  s.sweep.next = true;
  // What went with the key was reported when it was found gone (`applyTrimCheck`, `recreate`).
  forgetUnsure(s);
  s.checked = undefined;
  s.unverified = undefined;
  host.logger.warn({ stream: s.stream.name }, 'stream key is back: consumer group recreated at 0');
  return true;
}
