/**
 * A sink instance leaving: its consumer name, and leaving the groups of its
 * streams (on `removeStream` and `close`), bounded so that shutdown never
 * hangs on a stopped Redis.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../logger.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { sinkWideKeys } from './keys.js';
import { NOW } from './lua.js';
import { refusedAsMigrating } from './migratingRead.js';
import { leaveOneByOne } from './migratingWrites.js';
import { errorText } from './redisErrors.js';
import { Script } from './script.js';
import { FORGET_GRACES, type SinkStream } from './sinkState.js';

/** A consumer name unique to this instance: host, process and a random part. */
export function newConsumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Longest wait of each step of `close()` on an unresponsive Redis. */
export const CLOSE_STEP_MS = 2000;

/** Resolves to `p`, or to undefined after `ms`, so shutdown never hangs on a stopped Redis. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

/**
 * A consumer leaves a stream: it stops being live, gives up the lease, and
 * leaves the group if it owns no pending entry. With ARGV[3] = '1' (removeStream),
 * the group is destroyed when no consumer, no live instance (a fresh
 * keep-alive) and no pending entry is left.
 * KEYS: stream, consumers, lease, sink registry, delays, the stream's
 * positions hash (the group's field goes with it: see `positionsKey`).
 * ARGV: group, self, destroyIfLast, staleMs.
 * Returns {1, unread} when the group was destroyed (unread: the entries after
 * its last-delivered ID, which no instance of the sink will read now; -1 when
 * Redis cannot tell how many, 0 none), -1 when the consumer stays (it owns
 * pending entries: others claim them once it is seen stale), else 0.
 */
export const leave = new Script(
  'leave',
  `redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
local ok, mine = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok then return 0 end
if #mine > 0 then return -1 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '1' then return 0 end
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(summary[1]) > 0 then return 0 end
if #redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1]) > 0 then return 0 end
${NOW}
if redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[4]), '+inf') > 0 then return 0 end
-- What the group had not read goes with it: the entries after its last-delivered ID, counted by
-- XINFO's lag (nil after deletions, or before Redis 7: how many unknown). Looked for first: a lag
-- left stale by a restart (entries-read is not persisted with the reads) counts none that exist.
local unread = 0
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
  if f['name'] == ARGV[1] and #redis.call('XRANGE', KEYS[1], '(' .. f['last-delivered-id'], '+', 'COUNT', 1) > 0 then
    unread = (type(f['lag']) == 'number' and f['lag'] > 0) and f['lag'] or -1
  end
end
redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[5])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return {1, unread}`,
);

/** Who leaves: the sink, this instance, its control connection and grace period. */
export interface Leaver {
  readonly name: string;
  readonly consumerName: string;
  readonly control: OwnedConnection;
  readonly graceMs: number;
  /**
   * The group of stream `s` was destroyed as this instance left it (its last
   * consumer; removeStream): `unread` entries after its position went with it
   * (-1: some, how many unknown), which no instance of the sink will read.
   */
  readonly destroyed?: (s: SinkStream, unread: number) => void;
}

/**
 * Leaves the group of stream `s` (see `leave`); with `destroyIfLast`
 * (removeStream) the group goes too when nothing and no one is left (told to
 * `l.destroyed`). Returns 1 destroyed, -1 still in the group (events of this
 * instance pending there), else 0.
 */
export async function leaveStream(l: Leaver, s: SinkStream, destroyIfLast: boolean): Promise<number> {
  try {
    const left = await evalScript(
      l.control,
      leave,
      [s.stream.key, s.keys.consumers, s.keys.lease, s.registry, s.keys.delays, s.positions],
      [l.name, l.consumerName, destroyIfLast ? '1' : '0', 2 * l.graceMs],
    );
    if (!Array.isArray(left)) return Number(left);
    l.destroyed?.(s, Number(left[1] ?? 0));
    return Number(left[0]);
  } catch (err) {
    // Its slot migrates and a key is missing (the lease, the delays set): see migratingWrites.ts.
    if (!refusedAsMigrating(err)) throw err;
    const keys = { stream: s.stream.key, consumers: s.keys.consumers, lease: s.keys.lease };
    return leaveOneByOne(l.control, keys, { group: l.name, self: l.consumerName, destroyIfLast });
  }
}

/** Where a sink counts losses (`SinkHolds`). */
export interface LossCounts {
  countLost(name: string, count: number, why: string): void;
  maybeLost(name: string, why: string): void;
}

/**
 * The group of stream `s` was destroyed as this instance left it (see
 * `Leaver.destroyed`): said (debug), and the `unread` entries after its
 * position counted lost (SEMANTICS.md §4: an event whose group is destroyed
 * is reported lost). No instance of the sink reads them now: one that reads
 * the stream later starts a new group at its `startAt`.
 */
export function reportDestroyed(logger: Logger, losses: LossCounts, s: SinkStream, unread: number): void {
  logger.debug({ stream: s.stream.name, unread }, 'removed the stream: no other consumer, its group is destroyed');
  const why = 'events not read when removeStream destroyed the group (no other consumer of the sink)';
  if (unread > 0) losses.countLost(s.stream.name, unread, why);
  else if (unread < 0) losses.maybeLost(s.stream.name, `${why}: how many is unknown`);
}

/**
 * Leaves the groups of streams left behind (removeStream with events still
 * pending) once a sweep found none of this instance's left there, destroying
 * each when no one is left, as removeStream does. Returns those where
 * something is pending again (or the call failed): still left behind.
 */
export async function leaveLeftBehind(l: Leaver, streams: readonly SinkStream[], logger: Logger): Promise<SinkStream[]> {
  const still: SinkStream[] = [];
  for (const s of streams) {
    try {
      if ((await leaveStream(l, s, true)) < 0) still.push(s);
    } catch (err) {
      logger.debug({ stream: s.stream.name, err: errorText(err) }, 'could not leave a removed stream yet: tried again');
      still.push(s);
    }
  }
  return still;
}

/**
 * Leaves every stream's group at close, each bounded; a failure is logged,
 * never thrown. When this instance left every group with nothing pending, it
 * also leaves the sink's liveness set: the other instances then have nothing
 * to look for, where an instance gone stale makes them sweep every stream
 * (see sinkMaintenance.ts). Otherwise it stays there and goes stale.
 */
export async function leaveAll(
  l: Leaver,
  streams: readonly SinkStream[],
  logger: Logger,
  removed: ReadonlySet<SinkStream> = new Set(),
): Promise<void> {
  const left = await Promise.all(
    streams.map(async (s) => {
      try {
        // A stream removeStream left behind goes as removeStream would have it go: its group too when no one is left.
        return (await within(leaveStream(l, s, removed.has(s)), CLOSE_STEP_MS)) ?? -1;
      } catch (err) {
        logger.warn({ stream: s.stream.name, err: errorText(err) }, 'could not leave the group cleanly');
        return -1;
      }
    }),
  );
  const stayed = streams.filter((_, i) => (left[i] ?? -1) < 0);
  if (stayed.length > 0) {
    await postWork(l, stayed, logger);
    return;
  }
  const key = sinkWideKeys(l.name).instances;
  try {
    await within(l.control.send(['ZREM', key, l.consumerName], key), CLOSE_STEP_MS);
  } catch (err) {
    logger.warn({ err: errorText(err) }, 'could not leave the sink liveness set: the others will sweep once');
  }
}

/**
 * Streams where this instance stays in the group at close (events of its
 * own still pending: a handler's, a nack's) go to the sink-wide work set,
 * which the live instances read at their next beat (every grace period /
 * 2) and sweep: a nack's delay shorter than the grace period is then
 * honoured by one of them (its due time is kept in Redis). Without it they
 * swept those streams only once this instance went stale, a grace period
 * after its last beat: a `nack({ delayMs: 300 })` before a rolling
 * restart came back after about 3 s (outside review AH). The set expires
 * as the liveness calls make it expire (never sooner than it would).
 */
async function postWork(l: Leaver, stayed: readonly SinkStream[], logger: Logger): Promise<void> {
  const key = sinkWideKeys(l.name).work;
  const ms = FORGET_GRACES * l.graceMs;
  try {
    await within(
      l.control.transaction(
        [
          ['SADD', key, ...stayed.map((s) => s.stream.key)],
          ['PEXPIRE', key, ms, 'NX'],
          ['PEXPIRE', key, ms, 'GT'],
        ],
        key,
      ),
      CLOSE_STEP_MS,
    );
  } catch (err) {
    logger.warn(
      { err: errorText(err) },
      'could not post the streams left with pending events: the others sweep them once this instance is stale',
    );
  }
}
