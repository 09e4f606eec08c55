/**
 * Sink-wide liveness: every sweep, each instance of a sink records itself in
 * one sorted set of the sink (its slot, whatever streams it reads) and reads
 * back who else is live, and which streams others found idle events on but
 * had no room to claim. One script call of a few commands per sweep, however
 * many streams the instance reads: this is what lets the per-stream sweep
 * run only where something may wait (see sinkMaintenance.ts).
 */

import { monotonicNow } from './clock.js';
import { evalScript } from './driver.js';
import { marksOf } from './holderWatch.js';
import { sinkWideKeys, streamKey } from './keys.js';
import { NOW } from './lua.js';
import { RedisClockWatch } from './redisClock.js';
import { str } from './replies.js';
import { Script } from './script.js';
import type { MaintenanceHost } from './sinkHosts.js';

/**
 * Records this instance (server time), and reads back the others, the
 * work set and when the given streams' expiries were last marked reported
 * (see holderWatch.ts). The first two keys expire `forgetMs` after the last
 * call that added to them or tidied (a sink no instance runs leaves
 * nothing); every `tidy` call also forgets instances not seen for `forgetMs`.
 * KEYS: instances, work, reported. ARGV: consumer, forgetMs, tidy ('1' or '0'),
 * then stream keys to add to the work set, '--', stream keys to take out of it,
 * '--', stream keys whose marks to read.
 * Returns {now, {name, score, ...} before this call, work set members, the marks (nil: none)}.
 */
export const liveness = new Script(
  'liveness',
  `${NOW}
local seen = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local forget = tonumber(ARGV[2])
local tidy = ARGV[3] == '1'
-- A key this call created (or a member it added) gets its expiry now, not at the next tidy call:
-- an instance that crashes before it must not leave a key that never expires.
if redis.call('ZADD', KEYS[1], now, ARGV[1]) == 1 or tidy then redis.call('PEXPIRE', KEYS[1], forget) end
local part, added, look = 0, false, {}
for i = 4, #ARGV do
  local a = ARGV[i]
  if a == '--' then part = part + 1
  elseif part == 0 then added = redis.call('SADD', KEYS[2], a) == 1 or added
  elseif part == 1 then redis.call('SREM', KEYS[2], a)
  else look[#look + 1] = a end
end
if added or tidy then redis.call('PEXPIRE', KEYS[2], forget) end
if tidy then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - forget) end
local marks = {}
if #look > 0 then marks = redis.call('ZMSCORE', KEYS[3], unpack(look)) end
return {now, seen, redis.call('SMEMBERS', KEYS[2]), marks}`,
);

/** What one liveness call tells. */
export interface Beat {
  /** Instances seen within the live window (this one included): never removed from a group, their leases stand. */
  readonly live: readonly string[];
  /** Instances that just went quiet for a grace period: crashed or frozen, their events are idle by now or soon. */
  readonly newlyStale: readonly string[];
  /** This instance itself had gone quiet long enough for others to take its leases: check them all. */
  readonly lapsed: boolean;
  /** Stream keys where some instance found idle events it had no room for. */
  readonly work: readonly string[];
  /**
   * This instance was missing from the record it wrote before: the record
   * was lost (a restart or failover of its node without it) or forgot this
   * instance (frozen that long). Who crashed meanwhile is unknown: sweep as
   * after a crash.
   */
  readonly reset: boolean;
  /** Redis server time of this call (ms). */
  readonly now: number;
  /** When an instance last marked the expiry of each stream asked about reported (see holderWatch.ts). */
  readonly reported: ReadonlyMap<string, number>;
}

/** Sweeps between two tidy-ups of the sink-wide keys. */
const TIDY_EVERY = 10;

export class SinkLiveness {
  /** Names last seen stale: one crash triggers one round of sweeps, not one per beat. */
  #stale = new Set<string>();
  #beats = 0;
  /** A call of this instance was answered: from then on its own name is in the record. */
  #joined = false;
  readonly #keys: { instances: string; work: string; reported: string };
  /** Says when Redis's clock jumps: liveness ages, idle times and nack delays run on it. */
  readonly #redisClock: RedisClockWatch;

  constructor(
    private readonly host: MaintenanceHost,
    /** Quiet this long: stale (crash sweeps start). */
    private readonly staleMs: number,
    /** Quiet this long: no longer live (may be removed from groups, its leases taken). */
    private readonly liveMs: number,
    /** Not seen this long: forgotten. */
    private readonly forgetMs: number,
  ) {
    this.#keys = sinkWideKeys(host.name);
    this.#redisClock = new RedisClockWatch(host.logger, host.hasLogger, `sink ${host.name}`);
  }

  /**
   * One liveness call; `found`: streams with idle events this instance cannot
   * take, `done`: work streams found empty, `marks`: streams (by name) whose
   * expiry marks to read.
   */
  async beat(found: readonly string[], done: readonly string[], marks: readonly string[] = []): Promise<Beat> {
    const me = this.host.consumerName;
    const tidy = this.#beats++ % TIDY_EVERY === 0;
    const args = [me, this.forgetMs, tidy ? '1' : '0', ...found, '--', ...done, '--', ...marks.map(streamKey)];
    const sentAt = monotonicNow();
    const reply = (await evalScript(
      this.host.control,
      liveness,
      [this.#keys.instances, this.#keys.work, this.#keys.reported],
      args,
    )) as unknown[];
    const now = Number(reply[0]);
    this.#redisClock.observe(now, sentAt, monotonicNow());
    const seen = (reply[1] as unknown[]).map(str);
    const live = [me];
    const stale = new Set<string>();
    let lapsed = false;
    let listed = false;
    for (let i = 0; i + 1 < seen.length; i += 2) {
      const name = seen[i] as string;
      const age = now - Number(seen[i + 1]);
      if (name === me) {
        lapsed = age > this.staleMs;
        listed = true;
        continue;
      }
      if (age <= this.liveMs) live.push(name);
      if (age > this.staleMs) stale.add(name);
    }
    const newlyStale = [...stale].filter((n) => !this.#stale.has(n));
    this.#stale = stale;
    const reset = this.#joined && !listed;
    this.#joined = true;
    return {
      live,
      newlyStale,
      lapsed: lapsed || reset,
      work: (reply[2] as unknown[]).map(str),
      reset,
      now,
      reported: marksOf(marks, reply[3]),
    };
  }
}
