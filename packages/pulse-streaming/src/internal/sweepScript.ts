/**
 * The sweep: a sink instance's periodic bookkeeping of many streams in one
 * script call (one per hash slot on a cluster), so that an idle sink costs a
 * few Redis commands per stream and sweep, not a script call per stream and
 * task every reclaim interval.
 */
import { evalScript } from './driver.js';
import { str } from './replies.js';
import { Script } from './script.js';
import { FOLLOW } from './scripts.js';
import type { MaintenanceHost } from './sinkHosts.js';
import type { SinkStream } from './sinkState.js';
import { slotOf } from './slot.js';

/** Most streams in one sweep call: a call blocks Redis while it runs. */
const SWEEP_CHUNK = 256;

/** Keys of one stream in a sweep call, in this order. */
export const SWEEP_KEYS_PER_STREAM = 4;

/** Per-stream flags of a sweep call (ARGV after the shared ones). */
export const SWEEP_HELD = 1;
/** The stream had a time to live at the last keep-alive: bookkeeping keys follow it even once it is gone (PERSIST). */
export const SWEEP_HAD_TTL = 2;

const CONSUMER_FIELDS = `local name, pending, idle
      for j = 1, #info, 2 do
        local k = info[j]
        if k == 'name' then name = info[j + 1] elseif k == 'pending' then pending = tonumber(info[j + 1]) elseif k == 'idle' then idle = tonumber(info[j + 1]) end
      end`;

/**
 * For each stream, in this order:
 * - whether idle events wait (XPENDING with IDLE, count 1): also tells that
 *   the stream and the group exist; a stream whose key or group is missing
 *   is left alone ({-1}), the read path accounts for it, and nothing is
 *   written that would outlive a deleted key;
 * - the lease that lets one instance at a time clean up and dead-letter
 *   without room: renewed in one command by its holder (SET XX GET, written
 *   back when another took it meanwhile), taken with SET NX by the others;
 * - with `keep`, the keep-alive: the consumer's liveness (server time) and the
 *   sink's registration, which expire with the stream (see `follow`);
 * - with `cleanup`, by the lease holder only: stale consumers that own no
 *   pending entry leave the group (their entries are claimed first, after the
 *   grace period, then they go).
 * KEYS: per stream: stream, lease, consumers, sink registry.
 * ARGV: group, consumer, minIdle, leaseMs, staleMs, least expiry of the
 *       keep-alive keys (ms), keep ('1'), cleanup ('1'), then per stream its
 *       flags (SWEEP_HELD + SWEEP_HAD_TTL).
 * Returns per stream {held (0/1, -1: no key or group), idle events waiting (0/1), removed consumers, stream PTTL (-3: not read)}.
 */
export const sweep = new Script(
  'sweep',
  `${FOLLOW}
local group, me, leaseMs = ARGV[1], ARGV[2], ARGV[4]
local keep, cleanup = ARGV[7] == '1', ARGV[8] == '1'
local staleMs, floor = tonumber(ARGV[5]), tonumber(ARGV[6])
-- Redis server time, so that liveness never compares two hosts' clocks.
local now
if keep or cleanup then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local out = {}
for i = 1, #KEYS / ${SWEEP_KEYS_PER_STREAM} do
  local stream, lease, consumers, registry = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local flags = tonumber(ARGV[8 + i])
  local ok, pend = pcall(redis.call, 'XPENDING', stream, group, 'IDLE', ARGV[3], '-', '+', 1)
  if not ok then
    out[i] = {-1, 0, {}, -3}
  else
    local held, old = 0, false
    if flags % 2 == 1 then
      old = redis.call('SET', lease, me, 'XX', 'GET', 'PX', leaseMs)
      if old == me then
        held = 1
      elseif old then
        -- Another instance took it while this one stalled: give it back.
        redis.call('SET', lease, old, 'PX', leaseMs)
      end
    end
    if held == 0 and not old and redis.call('SET', lease, me, 'NX', 'PX', leaseMs) then held = 1 end
    local pttl = -3
    if keep then
      pttl = redis.call('PTTL', stream)
      redis.call('ZADD', consumers, now, me)
      redis.call('SADD', registry, group)
      -- Without a TTL now or before, both keys have none: PERSIST would do nothing.
      if pttl > 0 or flags >= ${SWEEP_HAD_TTL} then follow(pttl, floor, {consumers, registry}) end
    end
    local removed = {}
    if held == 1 and cleanup then
      local inGroup = {}
      for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
        ${CONSUMER_FIELDS}
        inGroup[name] = true
        if name ~= me then
          local seen = redis.call('ZSCORE', consumers, name)
          local stale
          if seen then stale = (now - tonumber(seen)) > staleMs else stale = idle > staleMs end
          if stale and pending == 0 then
            redis.call('XGROUP', 'DELCONSUMER', stream, group, name)
            redis.call('ZREM', consumers, name)
            removed[#removed + 1] = name
          end
        end
      end
      for _, name in ipairs(redis.call('ZRANGEBYSCORE', consumers, '-inf', now - staleMs)) do
        if not inGroup[name] then redis.call('ZREM', consumers, name) end
      end
    end
    out[i] = {held, #pend, removed, pttl}
  end
end
return out`,
);

export interface SweepOptions {
  /** Keep-alive and stale-consumer cleanup in this sweep. */
  readonly keepAlive: boolean;
  readonly leaseMs: number;
  /** Least time to live of the keep-alive keys of a stream with a TTL (ms). */
  readonly keepAliveFloorMs: number;
  readonly signal: AbortSignal;
}

/**
 * One sweep of every stream the instance reads (see `sweep`), one call per
 * hash-slot group and SWEEP_CHUNK streams; records which leases it holds and
 * returns the streams where idle events wait.
 */
export async function sweepStreams(host: MaintenanceHost, o: SweepOptions): Promise<SinkStream[]> {
  const groups = new Map<number, SinkStream[]>();
  for (const s of host.streams()) {
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
      found.push(...(await sweepChunk(host, list.slice(i, i + SWEEP_CHUNK), o)));
    }
  }
  return found;
}

async function sweepChunk(host: MaintenanceHost, streams: readonly SinkStream[], o: SweepOptions): Promise<SinkStream[]> {
  const { settings, name, consumerName } = host;
  const keys: string[] = [];
  const args: Array<string | number> = [
    name,
    consumerName,
    settings.graceMs,
    o.leaseMs,
    2 * settings.graceMs,
    o.keepAliveFloorMs,
    o.keepAlive ? '1' : '',
    o.keepAlive ? '1' : '',
  ];
  for (const s of streams) {
    keys.push(s.stream.key, s.keys.lease, s.keys.consumers, s.registry);
    args.push((s.leaseHeld ? SWEEP_HELD : 0) + (s.hadTtl ? SWEEP_HAD_TTL : 0));
  }
  if (keys.length !== streams.length * SWEEP_KEYS_PER_STREAM) throw new Error('sweep keys out of step');
  const reply = (await evalScript(host.control, sweep, keys, args)) as unknown[];
  const found: SinkStream[] = [];
  for (let i = 0; i < streams.length; i++) {
    const s = streams[i] as SinkStream;
    const [held, idle, removed, pttl] = (reply[i] ?? []) as [unknown, unknown, unknown[], unknown];
    // The key or the group is missing: the read path finds out and accounts for it.
    if (Number(held) < 0) {
      s.leaseHeld = false;
      continue;
    }
    s.leaseHeld = Number(held) === 1;
    if (Number(pttl) !== -3) s.hadTtl = Number(pttl) > 0;
    if (Array.isArray(removed) && removed.length > 0)
      host.logger.info({ stream: s.stream.name, consumers: removed.map(str) }, 'removed stale consumers');
    if (!settings.noAck && Number(idle) > 0) found.push(s);
  }
  return found;
}
