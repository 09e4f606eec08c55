/**
 * The sweep: a sink instance's bookkeeping of many streams in one script
 * call (one per hash slot on a cluster): finding idle events, the lease,
 * the stale-consumer cleanup. Which streams a sweep covers, and when, is
 * decided in sinkMaintenance.ts: only those where something may wait.
 */
import { evalScript } from './driver.js';
import { NOW } from './lua.js';
import { str } from './replies.js';
import { Script } from './script.js';
import { FOLLOW } from './scripts.js';
import { type MaintenanceHost, recoverUnread } from './sinkHosts.js';
import type { InstanceOptions } from './sinkLiveness.js';
import type { SinkStream } from './sinkState.js';
import { slotOf } from './slot.js';

/**
 * Events a sweep looks at that turn idle before its next sweep, to claim them
 * as the first of them does (see `sweep`).
 */
const SOON_COUNT = 100;

/** Most streams in one sweep call: a call blocks Redis while it runs. */
const SWEEP_CHUNK = 256;

/** Keys of one stream in a sweep call, in this order. */
export const SWEEP_KEYS_PER_STREAM = 4;

/** Per-stream flags of a sweep call (ARGV after the shared ones). */
/** The stream had a time to live at its last sweep: bookkeeping keys follow it even once it is gone (PERSIST). */
export const SWEEP_HAD_TTL = 1;
/** Remove consumers of instances no longer live (that own no pending entry) from the group. */
export const SWEEP_CLEANUP = 2;
/**
 * A stream this instance left (removeStream) with events of its own still
 * pending: only find idle events and its own pending count. It neither takes
 * the lease nor records itself in the consumers set: a lease taken there
 * would stay with an instance that no longer reads the stream, and the count
 * of what goes with an expired stream is the lease holder's.
 */
export const SWEEP_BEHIND = 4;

const CONSUMER_FIELDS = `local name, pending, idle
      for j = 1, #info, 2 do
        local k = info[j]
        if k == 'name' then name = info[j + 1] elseif k == 'pending' then pending = tonumber(info[j + 1]) elseif k == 'idle' then idle = tonumber(info[j + 1]) end
      end`;

/**
 * For each stream, in this order:
 * - the group's pending summary (XPENDING): also tells that the stream and
 *   the group exist; a stream whose key or group is missing is left alone
 *   ({-1}), the read path accounts for it, and nothing is written that would
 *   outlive a deleted key. Then, only when something is pending, whether
 *   idle events wait (XPENDING with IDLE, count 1);
 * - the stream's lease (which instance dead-letters without room and counts
 *   what went with an expired stream): kept by its holder while that one is
 *   live (the sink-wide record, ARGV, or a fresh entry in the stream's
 *   consumers set), taken by this instance otherwise. No expiry of its own:
 *   it follows the stream's (see `follow`) and goes with a destroy;
 * - this instance's entry in the stream's consumers set (what the CLI shows;
 *   liveness itself is sink-wide) and, when the stream has a time to live,
 *   the sink's registration; both expire with the stream;
 * - with SWEEP_BEHIND (a stream this instance left), none of the two above;
 * - with SWEEP_CLEANUP, consumers of instances not live that own no pending
 *   entry and have been idle for staleMs leave the group (their entries are
 *   claimed first, after the grace period, then they go).
 * KEYS: per stream: stream, lease, consumers, sink registry.
 * ARGV: group, consumer, minIdle, staleMs, least expiry of the keys of a
 *       stream with a time to live (ms), then per stream its flags
 *       (SWEEP_HAD_TTL + SWEEP_CLEANUP + SWEEP_BEHIND), then k and k pairs
 *       (live instance whose options differ, its grace period: a longer one
 *       is what idle means where it holds events, see `claim`), then the live
 *       instances.
 * Returns per stream {held (0/1, -1: no key or group), idle events waiting
 * (0/1), removed consumers, stream PTTL, events pending for this consumer,
 * consumers of instances not live still in the group (with SWEEP_CLEANUP),
 * the lease holder ('' when not looked at), the instances of the pairs with
 * events pending there, ms until the first of the events that turn idle
 * before the next sweep does (-1: none, or idle events wait)}.
 */
export const sweep = new Script(
  'sweep',
  `${FOLLOW}
local group, me, minIdle = ARGV[1], ARGV[2], ARGV[3]
-- This instance's sweep period (sinkMaintenance.ts).
local sweepMs = math.max(5, math.floor(tonumber(minIdle) / 2))
local staleMs, floor = tonumber(ARGV[4]), tonumber(ARGV[5])
local n = #KEYS / ${SWEEP_KEYS_PER_STREAM}
local live, graces, k = {[me] = true}, {}, tonumber(ARGV[6 + n])
for j = 7 + n, 6 + n + 2 * k, 2 do graces[ARGV[j]] = tonumber(ARGV[j + 1]) end
for j = 7 + n + 2 * k, #ARGV do live[ARGV[j]] = true end
-- Redis server time, so that liveness never compares two hosts' clocks.
${NOW}
local out = {}
for i = 1, n do
  local stream, lease, consumers, registry = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local flags = tonumber(ARGV[5 + i])
  local hadTtl, cleanup, behind = flags % 2 == 1, math.floor(flags / 2) % 2 == 1, flags >= 4
  local ok, summary = pcall(redis.call, 'XPENDING', stream, group)
  if not ok then
    out[i] = {-1, 0, {}, -3, 0, {}, '', {}, -1}
  else
    local waiting, mine, differ, soon = 0, 0, {}, -1
    if tonumber(summary[1]) > 0 then
      -- As the claim: a live instance with a longer grace period holding events here refreshes them that much later.
      local idle = tonumber(minIdle)
      for _, c in ipairs(summary[4]) do
        if c[1] == me then mine = tonumber(c[2]) end
        local g = graces[c[1]]
        if g then
          differ[#differ + 1] = c[1]
          if g > idle then idle = g end
        end
      end
      -- Idle events, and those that turn idle before the next sweep (one sweep period, half the
      -- grace period, from now), in one scan of the pending list: the latter are claimed when the
      -- first of them does, not up to a sweep period later. Those a process() run keeps in
      -- progress are refreshed every third of it: never among them. A scan that stops at its
      -- count before an idle one only makes the claim come at \`soon\`, within the sweep period.
      local near = redis.call('XPENDING', stream, group, 'IDLE', math.max(0, idle - sweepMs), '-', '+', ${SOON_COUNT})
      for _, e in ipairs(near) do
        local wait = idle - tonumber(e[3])
        if wait <= 0 then waiting = 1 elseif soon < 0 or wait < soon then soon = wait end
      end
      if waiting == 1 then soon = -1 end
    end
    local held, pttl, holds = 0, -3, ''
    if not behind then
      local holder = redis.call('GET', lease)
      if holder == me then
        held = 1
      elseif not holder or not live[holder] then
        -- Not in the sink-wide record this instance read: it may have started since, then its entry here is fresh.
        local seen = holder and redis.call('ZSCORE', consumers, holder)
        if not seen or now - tonumber(seen) > staleMs then
          redis.call('SET', lease, me)
          held = 1
        end
      end
      if held == 1 then holds = me else holds = holder or '' end
      redis.call('ZADD', consumers, now, me)
      pttl = redis.call('PTTL', stream)
      -- Without a TTL now or before, the keys have none: PERSIST would do nothing.
      if pttl > 0 or hadTtl then
        redis.call('SADD', registry, group)
        follow(pttl, floor, {consumers, registry, lease})
      end
    end
    local removed, left = {}, {}
    if cleanup then
      local inGroup = {}
      for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
        ${CONSUMER_FIELDS}
        inGroup[name] = true
        if not live[name] then
          if pending == 0 and idle > staleMs then
            redis.call('XGROUP', 'DELCONSUMER', stream, group, name)
            redis.call('ZREM', consumers, name)
            removed[#removed + 1] = name
          else
            left[#left + 1] = name
          end
        end
      end
      for _, name in ipairs(redis.call('ZRANGEBYSCORE', consumers, '-inf', now - staleMs)) do
        if not inGroup[name] and not live[name] then redis.call('ZREM', consumers, name) end
      end
    end
    out[i] = {held, waiting, removed, pttl, mine, left, holds, differ, soon}
  end
end
return out`,
);

export interface SweepOptions {
  /** Instances live by the sink-wide record (see `SinkLiveness`). */
  readonly live: readonly string[];
  /** Live instances whose options differ from this one's (see `Beat.differing`). */
  readonly differing: ReadonlyMap<string, InstanceOptions>;
  /** Instances with a longer grace period, live or not (see `Beat.longerGraces`): idle means that long where they hold events. */
  readonly longerGraces: ReadonlyMap<string, number>;
  /** Some of `differing` have events pending on a stream swept. */
  readonly onDiffering: (names: readonly string[]) => void;
  /** Least time to live of the bookkeeping keys of a stream with a TTL (ms). */
  readonly keepAliveFloorMs: number;
  /**
   * No idle event waits on stream `s` yet, and the first pending event of one
   * of its consumers turns idle in `ms`: a crashed consumer's events are
   * claimed then, not up to a sweep period later (1.5 grace periods).
   */
  readonly turnsIdleIn: (s: SinkStream, ms: number) => unknown;
  /** True for a stream this instance left with events pending (see SWEEP_BEHIND). */
  readonly behind: (s: SinkStream) => boolean;
  readonly signal: AbortSignal;
}

/**
 * One sweep of the streams `plan` names (with or without cleanup, see
 * `sweep`), one call per hash-slot group and SWEEP_CHUNK streams; records
 * on each stream what it learnt (lease, TTL, pending, consumers left) and
 * returns the streams where idle events wait.
 */
export async function sweepStreams(
  host: MaintenanceHost,
  plan: ReadonlyMap<SinkStream, boolean>,
  o: SweepOptions,
): Promise<SinkStream[]> {
  const groups = new Map<number, SinkStream[]>();
  for (const s of plan.keys()) {
    if (!s.ready) continue;
    const g = host.driver.isCluster ? slotOf(s.stream.key) : 0;
    const list = groups.get(g) ?? [];
    list.push(s);
    groups.set(g, list);
  }
  const found: SinkStream[] = [];
  for (const list of groups.values()) {
    for (let i = 0; i < list.length; i += SWEEP_CHUNK) {
      if (o.signal.aborted) return found;
      found.push(...(await sweepChunk(host, list.slice(i, i + SWEEP_CHUNK), plan, o)));
    }
  }
  return found;
}

async function sweepChunk(
  host: MaintenanceHost,
  streams: readonly SinkStream[],
  plan: ReadonlyMap<SinkStream, boolean>,
  o: SweepOptions,
): Promise<SinkStream[]> {
  const { name, consumerName } = host;
  const keys: string[] = [];
  const { graceMs } = host.settings;
  const args: Array<string | number> = [name, consumerName, graceMs, 2 * graceMs, o.keepAliveFloorMs];
  for (const s of streams) {
    keys.push(s.stream.key, s.keys.lease, s.keys.consumers, s.registry);
    args.push((s.hadTtl ? SWEEP_HAD_TTL : 0) + (plan.get(s) === true ? SWEEP_CLEANUP : 0) + (o.behind(s) ? SWEEP_BEHIND : 0));
  }
  const graces = new Map<string, number>([...o.differing].map(([n, d]) => [n, d.graceMs]));
  for (const [n, g] of o.longerGraces) graces.set(n, g);
  args.push(graces.size, ...[...graces].flat(), ...o.live);
  if (keys.length !== streams.length * SWEEP_KEYS_PER_STREAM) throw new Error('sweep keys out of step');
  // What was read as the sweep leaves: a read that ran in Redis after the
  // sweep may be seen here before its reply, and must get a sweep of its own.
  const reads = streams.map((s) => s.lastRead);
  const reply = (await evalScript(host.control, sweep, keys, args)) as unknown[];
  const found: SinkStream[] = [];
  const missing: SinkStream[] = [];
  for (let i = 0; i < streams.length; i++) {
    const s = streams[i] as SinkStream;
    const [held, idle, removed, pttl, mine, left, holder, differ, soon] = (reply[i] ?? []) as [
      unknown,
      unknown,
      unknown,
      unknown[],
      unknown,
      unknown,
      unknown[],
      unknown,
      unknown,
    ];
    s.sweep.read = reads[i];
    s.sweep.next = false;
    // The key or the group is missing: the read path finds out and accounts for it while it
    // reads, else its check runs below (see `recoverUnread`); one left behind is no longer read here.
    if (Number(held) < 0) {
      // Not held, if a sweep ever said; still unknown if none has.
      if (s.leaseHeld !== undefined) s.leaseHeld = false;
      if (o.behind(s)) s.sweep.mine = 0;
      else missing.push(s);
      continue;
    }
    s.leaseHeld = Number(held) === 1;
    if (Array.isArray(differ) && differ.length > 0) o.onDiffering(differ.map(str));
    s.leaseHolder = str(holder ?? '') || undefined;
    // Left behind: the script did not look (see SWEEP_BEHIND).
    if (!o.behind(s)) s.hadTtl = Number(pttl) > 0;
    s.sweep.mine = Number(mine);
    if (plan.get(s) === true) s.sweep.left = Array.isArray(left) ? left.length : 0;
    if (Array.isArray(removed) && removed.length > 0)
      host.logger.info({ stream: s.stream.name, consumers: removed.map(str) }, 'removed stale consumers');
    // noAck too: it takes over what instances that are gone left pending (see `claim`).
    if (Number(idle) > 0) found.push(s);
    else if (Number(soon) >= 0) o.turnsIdleIn(s, Number(soon));
  }
  // Acts on this reply: no call while nothing is missing. A check that failed: swept again next time.
  for (const s of missing) s.sweep.mine = (await recoverUnread(host, s)) ? 0 : Math.max(s.sweep.mine, 1);
  return found;
}
