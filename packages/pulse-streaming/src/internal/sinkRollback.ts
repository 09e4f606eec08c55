/**
 * A sink finding Redis rolled back under it: restarted from an older
 * snapshot (RDB), or failed over to a replica that was behind. Entries Redis
 * had acknowledged are gone: those the sink had not read are lost (said, how
 * many unknown), and those this instance read and still holds are neither in
 * the stream nor pending any more. They are kept and handed out (the
 * instance has their bytes; a duplicate after a fault is allowed), never
 * taken for events another consumer took (see `SinkHolds.holdOwned`).
 * Outside review C.
 */
import type { Logger } from '../logger.js';
import type { OwnedConnection } from './driver.js';
import { compareIds, maxId, minId, previousId } from './ids.js';
import { newestReadOrLetGo, sayLetGo } from './letGo.js';
import { str } from './replies.js';
import type { GoneUnsure, SinkStream } from './sinkState.js';
import { type StreamNow, streamNow } from './streamNow.js';

/** What finding a rollback needs from the sink's read path. */
export interface RollbackHost {
  readonly control: OwnedConnection;
  readonly logger: Logger;
  /** Reports that events of stream `name` may be lost, how many unknown. */
  maybeLost(name: string, why: string, ids?: readonly string[]): void;
  /** The stream's key is gone, or was created anew: reports what went with the old one. */
  streamGone(s: SinkStream, before: string | undefined): Promise<void>;
}

/**
 * The first check of `s` after a reconnect (a resync: the group's
 * entries-read cannot be trusted yet) looks whether Redis rolled back: the
 * last entry this instance read before the reconnect (`readBeforeReconnect`)
 * is gone although nothing trimmed it (the stream still starts at or before
 * it) or deleted it (its max-deleted-entry-id is below it), or the stream now
 * ends before it. A snapshot keeps none of what came after it; AOF restarts
 * and failovers to a replica in step keep it (no false alarm). Else, its
 * entries-added (kept by snapshots, AOF and replicas alike, unlike
 * entries-read) below the last one the sink saw says the key was created
 * anew, or rolled back (see `fell`). Nothing is concluded when the stream
 * cannot be read: resolves false then, and the stream stays due for this
 * check (the next check runs it again). `reached`: the later of where the
 * group was at the check before this one and what this instance had read
 * when this one was sent; `lagBefore`: the group's lag at the check before
 * this one.
 */
export async function afterReconnect(
  host: RollbackHost,
  s: SinkStream,
  reached: string | undefined,
  lagBefore: number,
): Promise<boolean> {
  // One at a time per stream: the read loop's check and a recovery's (a dead letter's or a nack's,
  // asking whether Redis lost an event) can both be resyncs. The second found what the first was
  // reading taken (`readBeforeReconnect` cleared) and concluded no rollback before the first had
  // remembered it: the dead letter of an event Redis lost said "another consumer took it" and
  // wrote nothing (clean-clone CI at 127137e).
  for (let running = resyncs.get(s); running !== undefined; running = resyncs.get(s)) {
    host.logger.debug({ stream: s.stream.name }, 'rollback check after a reconnect waits for the one under way');
    await running.catch(() => {});
  }
  const p = resync(host, s, reached, lagBefore);
  resyncs.set(s, p);
  try {
    return await p;
  } finally {
    if (resyncs.get(s) === p) resyncs.delete(s);
  }
}

/** Streams whose rollback check could not read them, said once (see `resync`). */
const unread = new WeakSet<SinkStream>();

/** The rollback check of each stream under way (see `afterReconnect`). */
const resyncs = new WeakMap<SinkStream, Promise<boolean>>();

async function resync(host: RollbackHost, s: SinkStream, reached: string | undefined, lagBefore: number): Promise<boolean> {
  const hi = s.readBeforeReconnect;
  const now = await streamNow(host.control, s.stream.key);
  // Not read (the control connection's node just failed over, a dropped connection): nothing
  // concluded, and the stream stays due for this check. Taken as done, the check trusted the
  // stream again, and no later check looked: a failover that lost what the sink had read went
  // unsaid once the promoted replica had as many entries again (clean-clone CI, stop 43).
  if (now.exists === undefined) {
    // Said once until a check reads it: while the control connection is away every read is a check.
    if (!unread.has(s))
      host.logger.info(
        { stream: s.stream.name },
        'rollback check after a reconnect could not read the stream: the next check tries again',
      );
    unread.add(s);
    return false;
  }
  unread.delete(s);
  // Gone since the trim check that brought this here: the next one says so (`nokey`), and what this
  // instance had read stays for what goes with the key (`goneWithKey`).
  if (now.exists === false) return true;
  s.readBeforeReconnect = undefined;
  try {
    await concludeResync(host, s, now, hi, reached, lagBefore);
  } catch (err) {
    // A read after the first failed: what this instance had read stays for the next check.
    s.readBeforeReconnect ??= hi;
    throw err;
  }
  return true;
}

/** `resync`, once the stream was read (`now`); `hi`: the last entry this instance read before the reconnect. */
async function concludeResync(
  host: RollbackHost,
  s: SinkStream,
  now: StreamNow,
  hi: string | undefined,
  reached: string | undefined,
  lagBefore: number,
): Promise<void> {
  if (hi !== undefined) {
    const ends = now.last !== undefined && compareIds(now.last, hi) < 0;
    const kept =
      now.first !== undefined &&
      compareIds(now.first, hi) <= 0 &&
      (now.maxDeleted === undefined || compareIds(now.maxDeleted, hi) < 0);
    if (ends || (kept && ((await host.control.send(['XRANGE', s.stream.key, hi, hi], s.stream.key)) as unknown[]).length === 0)) {
      await rolledBackTo(
        host,
        s,
        now,
        hi,
        ends ? `the stream now ends at ${now.last}, before ${hi}` : `entry ${hi} is gone, neither trimmed nor deleted`,
      );
      return;
    }
  }
  if (s.added >= 0 && now.added < s.added) await fell(host, s, now, now.first, reached, lagBefore);
}

/**
 * Entries-added of stream `s` fell to `now.added`. When the stream still
 * starts at or before `reached` (where the group was, or this instance had
 * read, before: the same key), Redis rolled back; otherwise the key was
 * created anew and the old one's events went with it (`streamGone`, for
 * those before `first`).
 */
export async function fell(
  host: RollbackHost,
  s: SinkStream,
  now: StreamNow,
  first: string | undefined,
  reached: string | undefined,
  lagBefore: number,
): Promise<void> {
  const sameKey = now.first !== undefined && reached !== undefined && compareIds(now.first, reached) <= 0;
  if (!sameKey) {
    await host.streamGone(s, first);
    return;
  }
  const upTo = newestReadOrLetGo(s);
  await rolledBackTo(host, s, now, upTo, `entries ever added fell from ${s.added} to ${now.added}`, lagBefore);
}

/**
 * Redis rolled back under `s`: events this instance read up to `upTo` may be
 * gone from Redis while it holds them (kept and handed out, see
 * `SinkHolds.holdOwned`), and those added after them that it had not read are
 * lost with the snapshot: said (how many is unknown, more may have been
 * added since its last check), unless its last check saw none unread and
 * nothing read since says there were more (`lagBefore` 0: a fall of
 * entries-added it had read through).
 */
async function rolledBackTo(
  host: RollbackHost,
  s: SinkStream,
  now: StreamNow,
  upTo: string | undefined,
  sign: string,
  lagBefore = -1,
): Promise<void> {
  // The snapshot's last entry: the newest still there at or before what this instance had read
  // (entries added since the restart come after it, as time went on). Unknown: none counts.
  // Entries deleted before the snapshot (stream.remove), and its last generated ID when nothing was
  // added since, end it later than its newest entry (outside review Y: a removed event said lost).
  let snapshotEnd = upTo === undefined ? '0-0' : await lastAtOrBefore(host, s, upTo);
  for (const end of [now.maxDeleted, now.last])
    if (upTo !== undefined && end !== undefined && compareIds(end, upTo) < 0)
      snapshotEnd = maxId(snapshotEnd, end) ?? snapshotEnd;
  // Only IDs after the snapshot's last entry: an event the snapshot had (pending for this consumer
  // again, or not yet delivered) may be taken over and acked since, and must then be dropped as any
  // other; the events Redis lost are those it never had. At most a few rollbacks are kept.
  if (upTo !== undefined) remember(s, snapshotEnd, upTo);
  const why = `Redis lost entries it had acknowledged (restarted from an older snapshot, or failed over to a replica that was behind: ${sign})`;
  // Let go of unhandled and lost with the snapshot (see `sayLetGo`). First in the line: without a
  // logger, process warnings of this kind come at most once a minute.
  const letGo = sayLetGo(s, snapshotEnd, upTo);
  if (lagBefore !== 0) {
    const unread = 'events added after those this sink read may be lost with them, how many is unknown';
    host.maybeLost(s.stream.name, `${why}: ${letGo === undefined ? unread : `${letGo.text}; ${unread}`}`, letGo?.ids);
  } else {
    if (letGo !== undefined) host.maybeLost(s.stream.name, `${why}: ${letGo.text}`, letGo.ids);
    host.logger.warn(
      { stream: s.stream.name },
      `${why}: events this instance holds that Redis lost are still handed out (their ack and nack do nothing)`,
    );
  }
  s.added = now.added;
}

/** What telling events Redis lost apart from those taken over needs of the sink. */
export interface VanishedHost {
  /** Whether event `id` of stream `name` was read before a rollback was found (see `rolledBack`). */
  rolledBack(name: string, id: string): boolean;
  /** Runs the check of stream `name` now (the one that finds a rollback). */
  recover(name: string): Promise<void>;
  /** Counts and reports events of stream `name` found lost. */
  countLost(name: string, count: number, why: string, ids?: readonly string[]): void;
}

/**
 * Of `ids` (events of stream `name` this instance holds that are pending for
 * no one and gone from the stream), those Redis lost in a rollback: read
 * before a rollback was found. When some are not known to be, the check that
 * finds a rollback runs first (it may not have run since the reconnect);
 * failing, it rejects: taking them for another consumer's could drop the
 * only copy.
 */
export async function lostByRedis(host: VanishedHost, name: string, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  if (ids.some((id) => !host.rolledBack(name, id))) await host.recover(name);
  return ids.filter((id) => host.rolledBack(name, id));
}

/**
 * Of events of stream `name` this instance let go of (`how`: a nack, a
 * buffer released behind a stalled subscriber...) and found pending for no
 * one and gone from the stream, those Redis lost in a rollback are counted
 * lost: nothing can redeliver them. The others were handled elsewhere
 * (taken over after the grace period) and trimmed since.
 */
export async function countVanished(host: VanishedHost, name: string, vanished: readonly string[], how: string): Promise<void> {
  const lost = await lostByRedis(host, name, vanished);
  if (lost.length > 0) host.countLost(name, lost.length, vanishedWhy(how), lost);
}

/** Why events Redis lost while this instance held them, and that it let go of (`how`), are counted lost. */
function vanishedWhy(how: string): string {
  return `events Redis lost while this instance held them (restarted from an older snapshot or empty, or their stream expired or was deleted) and ${how}: they cannot be redelivered`;
}

/**
 * Events `ids` of `s` that this instance let go of (`how`) found their
 * consumer group gone (NOGROUP), are no longer in the stream, and were not
 * known lost by Redis (`lostByRedis` said none): the check that finds a
 * restart without persistence may not have seen it yet (the read path's
 * check can come after the nack's under load, and one that met the key
 * still missing or a reply raced by a producer's add found nothing), and
 * nothing else counts them. Kept, and counted with `count` as soon as a loss
 * this instance remembers covers them (at once when one does already):
 * the order of the nack and the read path's recovery does not matter. Never
 * counted twice (taken out when counted), nor when the read path accounted
 * for the key or group going another way (`forgetUnsure`).
 */
export function awaitRedisLoss(
  s: SinkStream | undefined,
  ids: readonly string[],
  how: string,
  count: (ids: readonly string[], why: string) => void,
): void {
  // No longer read (removed from the sink): nothing will find its loss.
  if (s === undefined) return;
  for (const id of ids) s.goneUnsure.set(id, { how, count });
  // Bounded: events handlers held at once; the oldest go first (uncounted, as before this was kept).
  for (const id of s.goneUnsure.keys()) {
    if (s.goneUnsure.size <= MAX_UNSURE) break;
    s.goneUnsure.delete(id);
  }
  countCovered(s);
}

/** Counts the events of `s.goneUnsure` a loss remembered covers (see `awaitRedisLoss`), once each. */
function countCovered(s: SinkStream): void {
  if (s.goneUnsure.size === 0) return;
  const found = new Map<GoneUnsure, string[]>();
  for (const [id, u] of s.goneUnsure) {
    if (!rolledBack(s, id)) continue;
    s.goneUnsure.delete(id);
    const ids = found.get(u);
    if (ids) ids.push(id);
    else found.set(u, [id]);
  }
  for (const [u, ids] of found) u.count(ids, vanishedWhy(u.how));
}

/**
 * The read path accounted for stream `s`'s key or group going (its group
 * made anew, or what went with its key reported): the events let go of
 * before that a loss it remembered covered are counted by now; the others
 * went another way (an expiry's estimate counts them, or the group alone
 * was destroyed), and a later loss must not count them again.
 */
export function forgetUnsure(s: SinkStream): void {
  s.goneUnsure.clear();
}

/** Events kept per stream until a loss covers them (see `awaitRedisLoss`): more than handlers hold at once. */
const MAX_UNSURE = 10_000;

/** The ID of the newest entry of `s` at or before `id`; `upTo` itself when it cannot be read (no event counts as lost then). */
async function lastAtOrBefore(host: RollbackHost, s: SinkStream, id: string): Promise<string> {
  try {
    const r = (await host.control.send(['XREVRANGE', s.stream.key, id, '-', 'COUNT', 1], s.stream.key)) as unknown[];
    const first = r[0] as unknown[] | undefined;
    return first === undefined ? '0-0' : str(first[0]);
  } catch {
    return id;
  }
}

/**
 * The key of stream `s` went while this instance held events of it (Redis
 * restarted without persistence: found after a reconnect, with no check
 * since and no loss counted for it): the events it read before the reconnect are
 * gone from Redis as after a rollback. Remembered like one, so that a nack,
 * a dead letter, a give-back or an in-progress touch that finds one pending
 * for no one and gone counts it lost (or keeps it, for a touch), rather than
 * taking it for an event another consumer handled: nothing else counted it.
 * Nothing when there was no reconnect (an expiry, a DEL: the key's loss
 * estimate covers it) or a loss was counted since (counted twice, else).
 * When it applies, the events this sink had not read went with the key too,
 * uncounted: that is said, how many unknown (`maybeLost`).
 */
export function goneWithKey(s: SinkStream, maybeLost: (name: string, why: string, ids?: readonly string[]) => void): void {
  const upTo = s.readBeforeReconnect;
  if (upTo === undefined || s.lossCounted) return;
  remember(s, '0-0', upTo);
  const letGo = sayLetGo(s, '0-0', upTo);
  maybeLost(
    s.stream.name,
    `the stream and its consumer group were gone after a reconnect (Redis restarted without persistence, or failed over to a replica without them): ${letGo === undefined ? '' : `${letGo.text}; `}events this sink had not read are lost, how many is unknown`,
    letGo?.ids,
  );
}

/**
 * The consumer group of stream `s` was missing (destroyed by another
 * program) and made again at 0 on the living key, whose entries up to
 * `upTo` are gone: those this instance read are remembered as Redis-lost,
 * so that a nack, a give-back or a dead letter that finds one gone counts it
 * (an ack finds it handled). Events it let go of unhandled among them are
 * said lost unless another instance took them before.
 */
export function goneWhileMissing(s: SinkStream, upTo: string, maybeLost: (why: string, ids?: readonly string[]) => void): void {
  if (s.lastRead === undefined || compareIds(upTo, '0-0') <= 0) return;
  remember(s, '0-0', minId(s.lastRead, upTo));
  const letGo = sayLetGo(s, '0-0', upTo);
  if (letGo !== undefined)
    maybeLost(
      `the consumer group was missing (destroyed by another program) and their entries are gone: ${letGo.text}`,
      letGo.ids,
    );
}

/**
 * The key of stream `s` went (it expired, or was deleted outside the
 * library), and this instance reports what went with it from the estimate
 * of its last check: the events it read after that check's last entry
 * (`tailAtCheck`: a blocking read brought them) are in no estimate, and
 * those its handlers still hold went with the key. Remembered as Redis-lost,
 * so that a nack, a dead letter or a give-back that finds one gone counts it
 * (an ack finds it handled); without that, nothing counted them. What it
 * read is accounted for from then on. `before`: the key was created anew
 * at that ID, and what this instance read from it on is the new key's.
 */
export function goneAfterCheck(s: SinkStream, before?: string): void {
  const after = s.tailAtCheck ?? '0-0';
  // Created anew at `before`: what this instance read of the new key is not the old one's.
  const upTo = before !== undefined && s.lastRead !== undefined ? minId(s.lastRead, previousId(before)) : s.lastRead;
  if (upTo === undefined || compareIds(upTo, after) <= 0) return;
  s.tailAtCheck = upTo;
  remember(s, after, upTo);
}

/** Whether event `id` of `s` came after the stream's last entry at its last check (in no estimate of it). */
export function afterCheck(s: SinkStream, id: string): boolean {
  return compareIds(id, s.tailAtCheck ?? '0-0') > 0;
}

/** Remembers that events of `s` after `after` up to `upTo` may be gone from Redis while this instance held them (see `rolledBack`). */
function remember(s: SinkStream, after: string, upTo: string): void {
  if (s.rolledBack.some((r) => r.after === after && r.upTo === upTo)) return;
  s.rolledBack.push({ after, upTo });
  if (s.rolledBack.length > MAX_ROLLBACKS) s.rolledBack.shift();
  // Events let go of whose group was found gone before this loss was (see `awaitRedisLoss`).
  countCovered(s);
}

/** Rollbacks remembered per stream (see `SinkStream.rolledBack`). */
const MAX_ROLLBACKS = 8;

/** Whether event `id` of `s` may be one Redis lost in a rollback while this instance held it. */
export function rolledBack(s: SinkStream | undefined, id: string): boolean {
  if (s === undefined) return false;
  for (const r of s.rolledBack) if (compareIds(id, r.after) > 0 && compareIds(id, r.upTo) <= 0) return true;
  return false;
}
