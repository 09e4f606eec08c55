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
import { FORGET_GRACES } from './sinkState.js';

/**
 * Records this instance (server time) and its options, and reads back the
 * others with theirs, the work set and when the given streams' expiries
 * were last marked reported (see holderWatch.ts). Each instance is judged
 * by its own grace period (it beats every grace period / 2): instances of
 * one sink may run with different ones during a rolling deploy, and a
 * short-grace instance must not forget a long-grace one that beats slowly.
 * The keys expire `forgetGraces` grace periods (the longest among the
 * instances seen) after the last call that added to them or tidied (a sink
 * no instance runs leaves nothing); every `tidy` call also forgets
 * instances not seen for `forgetGraces` of their own grace periods.
 * KEYS: instances, work, reported, options. ARGV: consumer, its options
 * ('<graceMs>:<noAck 0/1>'), forgetGraces, tidy ('1' or '0'), then stream
 * keys to add to the work set, '--', stream keys to take out of it, '--',
 * stream keys whose marks to read.
 * Returns {now, {name, score, ...} before this call, work set members, the
 * marks (nil: none), {name, options, ...} before this call}.
 */
export const liveness = new Script(
  'liveness',
  `${NOW}
local seen = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local raw = redis.call('HGETALL', KEYS[4])
local opts = {}
for i = 1, #raw, 2 do opts[raw[i]] = raw[i + 1] end
local me, mine, graces = ARGV[1], ARGV[2], tonumber(ARGV[3])
local tidy = ARGV[4] == '1'
-- An instance that records no options (an older version) is judged by this one's grace period.
local own = tonumber(string.match(mine, '^%d+'))
local function forgetOf(name)
  return graces * (tonumber(string.match(opts[name] or '', '^%d+') or '') or own)
end
local forget = forgetOf(me)
for i = 1, #seen, 2 do forget = math.max(forget, forgetOf(seen[i])) end
-- A key this call created (or a member it added) gets its expiry now, not at the next tidy call:
-- an instance that crashes before it must not leave a key that never expires.
if redis.call('ZADD', KEYS[1], now, me) == 1 or tidy then redis.call('PEXPIRE', KEYS[1], forget) end
if opts[me] ~= mine then
  redis.call('HSET', KEYS[4], me, mine)
  redis.call('PEXPIRE', KEYS[4], forget)
end
local part, added, look = 0, false, {}
for i = 5, #ARGV do
  local a = ARGV[i]
  if a == '--' then part = part + 1
  elseif part == 0 then added = redis.call('SADD', KEYS[2], a) == 1 or added
  elseif part == 1 then redis.call('SREM', KEYS[2], a)
  else look[#look + 1] = a end
end
if added or tidy then redis.call('PEXPIRE', KEYS[2], forget) end
if tidy then
  local kept = {[me] = true}
  for i = 1, #seen, 2 do
    local name = seen[i]
    if name ~= me and now - tonumber(seen[i + 1]) > forgetOf(name) then
      redis.call('ZREM', KEYS[1], name)
    else
      kept[name] = true
    end
  end
  -- Options of instances forgotten, or that left (sinkLeave.ts takes them out of the instances only).
  for name in pairs(opts) do
    if not kept[name] then redis.call('HDEL', KEYS[4], name) end
  end
  redis.call('PEXPIRE', KEYS[4], forget)
end
local marks = {}
if #look > 0 then marks = redis.call('ZMSCORE', KEYS[3], unpack(look)) end
return {now, seen, redis.call('SMEMBERS', KEYS[2]), marks, raw}`,
);

/** Options of an instance as the liveness record keeps them. */
export interface InstanceOptions {
  readonly graceMs: number;
  readonly noAck: boolean;
}

/** The liveness record's form of `o`. */
export function encodeOptions(o: InstanceOptions): string {
  return `${o.graceMs}:${o.noAck ? 1 : 0}`;
}

/** Reads the liveness record's form of options; undefined when it is not one (never written by this version). */
export function decodeOptions(v: string): InstanceOptions | undefined {
  const m = /^(\d+):([01])$/.exec(v);
  if (!m) return undefined;
  const graceMs = Number(m[1]);
  return graceMs > 0 ? { graceMs, noAck: m[2] === '1' } : undefined;
}

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
  /**
   * The instances with a longer grace period than this one's (live, or not
   * forgotten yet: one that closed may still run a handler), and theirs: an
   * event on a stream where one of them holds events is claimed only once
   * idle for that long (it refreshes its holds on its own, slower, schedule;
   * see the `claim` script).
   */
  readonly longerGraces: ReadonlyMap<string, number>;
  /** The live instances whose grace period or noAck differ from this one's, and their options. */
  readonly differing: ReadonlyMap<string, InstanceOptions>;
  /** Redis server time of this call (ms). */
  readonly now: number;
  /** When an instance last marked the expiry of each stream asked about reported (see holderWatch.ts). */
  readonly reported: ReadonlyMap<string, number>;
}

/** Sweeps between two tidy-ups of the sink-wide keys. */
const TIDY_EVERY = 10;

/** An instance quiet for this many of its own grace periods is stale (crash sweeps start): it missed a beat. */
const STALE_GRACES = 1;
/** Quiet this many of its grace periods: no longer live (may be removed from groups, its leases taken). */
const LIVE_GRACES = 2;

export class SinkLiveness {
  /** Names last seen stale: one crash triggers one round of sweeps, not one per beat. */
  #stale = new Set<string>();
  #beats = 0;
  /** A call of this instance was answered: from then on its own name is in the record. */
  #joined = false;
  readonly #keys: { instances: string; work: string; reported: string; options: string };
  /** This instance's options, as the record keeps them. */
  readonly #mine: string;
  /** Option differences with other instances already warned about: once each, not every beat. */
  readonly #warned = new Set<string>();
  /** Says when Redis's clock jumps: liveness ages, idle times and nack delays run on it. */
  readonly #redisClock: RedisClockWatch;
  /**
   * What the record said of each other instance, until forgotten: when the
   * last beat was (Redis ms) and its options. The record's keys carry a
   * time to live, so a `volatile-*` maxmemory policy may evict them (outside
   * review S): without this, the instances and grace periods they held were
   * forgotten at once, and a short-grace instance took an event a long-grace
   * one was still handling, or removed a live consumer as stale.
   */
  readonly #remembered = new Map<string, { lastSeen: number; options: InstanceOptions | undefined }>();
  /** Instances remembered when the record was found lost, not seen in it since: judged by their last beat before. */
  #recalled = new Set<string>();

  constructor(
    private readonly host: MaintenanceHost,
    /** This instance's grace period (ms): it beats every half of it. */
    private readonly graceMs: number,
  ) {
    this.#keys = sinkWideKeys(host.name);
    this.#mine = encodeOptions({ graceMs, noAck: host.settings.noAck });
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
    const args = [me, this.#mine, FORGET_GRACES, tidy ? '1' : '0', ...found, '--', ...done, '--', ...marks.map(streamKey)];
    const sentAt = monotonicNow();
    const reply = (await evalScript(
      this.host.control,
      liveness,
      [this.#keys.instances, this.#keys.work, this.#keys.reported, this.#keys.options],
      args,
    )) as unknown[];
    const now = Number(reply[0]);
    this.#redisClock.observe(now, sentAt, monotonicNow());
    const seen = (reply[1] as unknown[]).map(str);
    const options = new Map<string, InstanceOptions>();
    const raw = Array.isArray(reply[4]) ? reply[4].map(str) : [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const o = decodeOptions(raw[i + 1] as string);
      if (o) options.set(raw[i] as string, o);
    }
    const beats = new Map<string, number>();
    for (let i = 0; i + 1 < seen.length; i += 2) beats.set(seen[i] as string, Number(seen[i + 1]));
    const listed = beats.has(me);
    const reset = this.#joined && !listed;
    this.#recall(beats, options, now, reset);
    const live = [me];
    const stale = new Set<string>();
    let lapsed = false;
    const longerGraces = new Map<string, number>();
    const differing = new Map<string, InstanceOptions>();
    for (const [name, lastSeen] of beats) {
      const age = now - lastSeen;
      if (name === me) {
        lapsed = age > STALE_GRACES * this.graceMs;
        continue;
      }
      // Judged by its own grace period: it beats every half of it, whatever this instance's is.
      const theirs = options.get(name);
      const grace = theirs?.graceMs ?? this.graceMs;
      // Live or not, until forgotten: an instance that closed while a long handler runs stops its
      // beats but keeps touching that handler's event on its own (longer) schedule, and its events
      // are claimed only once idle for its grace period (a shorter one took the event mid-handler).
      if (grace > this.graceMs) longerGraces.set(name, grace);
      if (age <= LIVE_GRACES * grace) {
        live.push(name);
        if (theirs && (theirs.graceMs !== this.graceMs || theirs.noAck !== this.host.settings.noAck)) differing.set(name, theirs);
      }
      if (age > STALE_GRACES * grace) stale.add(name);
    }
    const newlyStale = [...stale].filter((n) => !this.#stale.has(n));
    this.#stale = stale;
    this.#joined = true;
    return {
      live,
      newlyStale,
      lapsed: lapsed || reset,
      work: (reply[2] as unknown[]).map(str),
      reset,
      longerGraces,
      differing,
      now,
      reported: marksOf(marks, reply[3]),
    };
  }

  /**
   * Completes what the record says (`beats`, `options`, read at Redis time
   * `now`) with what this instance remembers of it, and remembers what it
   * says: options an instance wrote once are its own for good (the options
   * key may be lost alone), and when the record was lost (`reset`) the
   * instances it held count with their last beat until they beat again
   * (within half their grace period, when live) or are forgotten.
   */
  #recall(beats: Map<string, number>, options: Map<string, InstanceOptions>, now: number, reset: boolean): void {
    const me = this.host.consumerName;
    if (reset) for (const name of this.#remembered.keys()) if (name !== me && !beats.has(name)) this.#recalled.add(name);
    for (const name of this.#recalled) {
      const kept = this.#remembered.get(name);
      if (beats.has(name) || !kept) this.#recalled.delete(name);
      else beats.set(name, kept.lastSeen);
    }
    for (const [name, lastSeen] of beats) {
      const theirs = options.get(name) ?? this.#remembered.get(name)?.options;
      if (theirs) options.set(name, theirs);
      if (name !== me) this.#remembered.set(name, { lastSeen, options: theirs });
    }
    for (const [name, kept] of this.#remembered) {
      if (now - kept.lastSeen <= FORGET_GRACES * (kept.options?.graceMs ?? this.graceMs)) continue;
      this.#remembered.delete(name);
      this.#recalled.delete(name);
    }
  }

  /**
   * Says once (per kind of difference) that a live instance of the sink with
   * another grace period or ack mode has events pending on a stream this one
   * reads (found by a sweep): ordinary in a rolling deploy, and nothing is
   * lost or handled twice for it, but it changes timings and guarantees a
   * reader of the logs should know of. Not for instances of the sink name
   * that only read other streams: the difference changes nothing there.
   */
  warnDiffers(names: readonly string[], differing: ReadonlyMap<string, InstanceOptions>): void {
    for (const name of names) {
      const theirs = differing.get(name);
      if (theirs) this.#warnDiffers(theirs);
    }
  }

  #warnDiffers(theirs: InstanceOptions): void {
    const { noAck } = this.host.settings;
    if (theirs.graceMs !== this.graceMs) {
      const key = `grace:${theirs.graceMs}`;
      if (!this.#warned.has(key)) {
        this.#warned.add(key);
        this.host.logger.warn(
          { ackGracePeriodMs: this.graceMs, otherAckGracePeriodMs: theirs.graceMs },
          'instances of this sink run with different ackGracePeriodMs: idle events are claimed once idle for the longest grace period of the live instances holding events on their stream (redelivery after a crash is that much slower there); nack and retry delays are kept as given',
        );
      }
    }
    if (theirs.noAck !== noAck && !this.#warned.has('noAck')) {
      this.#warned.add('noAck');
      this.host.logger.warn(
        { noAck, otherNoAck: theirs.noAck },
        'instances of this sink run with and without noAck: events read by a noAck instance are at most once; noAck instances take over (and ack as they take) events pending to ack-mode instances that are gone',
      );
    }
  }
}
