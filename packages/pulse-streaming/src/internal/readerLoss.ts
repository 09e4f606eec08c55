/**
 * How a reader counts the entries it never got: trimmed by `maxLen` or
 * deleted with `XDEL` after its cursor before it read them. `XREAD` jumps
 * over them without a word, so the reader keeps a ledger and checks it
 * against the stream's own counters (Redis 7.0 `XINFO STREAM`):
 *
 *   every entry added after the reader's start, or ahead of it when it
 *   started, is by now read by it, still ahead of its cursor, or lost.
 *
 * With `added` the stream's `entries-added`, `ahead` the entries after the
 * cursor now, and `base` the entries that were never the reader's (added
 * before its start and not ahead of it then):
 *
 *   lost = added - base - read - ahead
 *
 * This total only grows when an entry nobody read yet is deleted (an entry
 * deleted after the cursor will never be read: it is lost as soon as it is
 * gone), so it is exact whenever `ahead` is known. `ahead` is free when the
 * cursor is at the stream's end (0) or before its first entry (all of them:
 * trimming went past the cursor); and the total has not changed when the
 * stream's deleted count (`entries-added - length`) is the same as at the
 * last exact check, or when nothing after that check's cursor was deleted
 * since. Otherwise the script counts the entries on the shorter side of the
 * cursor, up to a cap, or says it does not know yet (a later check will).
 *
 * The start is read in the same script, so the base is exact: 'newest'
 * starts at the stream's last-generated ID (`base = added`), 'oldest' before
 * its first entry (`base = added - length`). A stream key deleted and created
 * again (destroy, TTL) restarts `entries-added`: what was unread in the old
 * key is reported as lost with an unknown count, and counting goes on from
 * the new key.
 *
 * Checks are rare (at most one per stream every `CHECK_INTERVAL_MS`, and
 * only after reads): a reader that loses nothing pays one small script
 * call a few times a second, not one per read.
 */

import { type Arg, evalScript } from './driver.js';
import { CMP } from './lua.js';
import { toPulseError } from './redisErrors.js';
import { str } from './replies.js';
import { Script } from './script.js';
import type { ResolvedStart } from './start.js';
import type { StreamHandle } from './streamHandle.js';

/** Shortest time between two checks of one stream. */
export const CHECK_INTERVAL_MS = 200;
/**
 * Checks copy the stream's first and last entries (`XINFO STREAM`): with
 * big entries they cost more, and are spaced out so that they take at most
 * about 1% of the time (a 3 ms check of 1 MB entries: one every 300 ms).
 */
const CHECK_TIME_SHARE = 100;
/** The longest time between two checks, however slow they were. */
const MAX_CHECK_GAP_MS = 5000;
/** Most entries a check counts on the server (copying entries through Lua costs). */
export const COUNT_CAP = 1000;

/**
 * KEYS: the stream. ARGV: 'start' or 'check', the cursor ('$' at start: the
 * stream's end), the counting cap, then for a check the cursor of the last
 * exact check and the stream's deleted count (entries-added - length) then
 * ('' for none).
 * Fails with Redis' error for a key of another type (a start from an ID
 * leaves it to the first read). Returns {'nokey'} (check) | {'unsupported'}
 * (before Redis 7.0), or:
 * - start: {'ok', cursor, base (-1 unknown), deleted};
 * - check: {'ok', entries-added, ahead, deleted} | {'same', deleted} (nothing
 *   lost since the last exact check) | {'unknown'}.
 */
export const readerPosition = new Script(
  'readerPosition',
  `${CMP}
local mode, at, cap, exact, deletedThen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
if not ok then
  local t = redis.call('TYPE', KEYS[1])
  t = t['ok'] or t
  if t == 'none' then
    if mode ~= 'start' then return {'nokey'} end
    if at == '$' then at = '0-0' end
    return {'ok', at, 0, 0}
  end
  -- Another type: a reader from a given ID finds it on its first read.
  if mode == 'start' and at ~= '$' then return {'ok', at, -1, 0} end
  return info
end
local s = {}
for j = 1, #info, 2 do s[info[j]] = info[j + 1] end
local added, md = tonumber(s['entries-added']), s['max-deleted-entry-id']
if added == nil or md == nil then return {'unsupported'} end
local len = tonumber(s['length'])
local deleted = added - len
local first = len > 0 and s['first-entry'][1]
local last = len > 0 and s['last-entry'][1]
if mode == 'start' and at == '$' then return {'ok', s['last-generated-id'], added, deleted} end
local ahead
if len == 0 or cmp(last, at) <= 0 then
  ahead = 0
elseif cmp(first, at) > 0 then
  ahead = len
elseif mode == 'check' and exact ~= '' and (deleted == deletedThen or (cmp(md, exact) <= 0 and cmp(first, exact) <= 0)) then
  -- Nothing deleted since the last exact check, or only entries it had read
  -- (XDEL at or before it, trimming short of it): no more lost.
  return {'same', deleted}
else
  -- Count the side of the cursor that looks shorter (by time) first.
  local ms = function(id) return tonumber(string.match(id, '^(%d+)')) end
  local sides = {{'(' .. at, '+', false}, {'-', at, true}}
  if ms(at) - ms(first) < ms(last) - ms(at) then sides = {sides[2], sides[1]} end
  for _, side in ipairs(sides) do
    local n = #redis.call('XRANGE', KEYS[1], side[1], side[2], 'COUNT', cap + 1)
    if n <= cap then
      if side[3] then ahead = len - n else ahead = n end
      break
    end
  end
end
if mode == 'start' then
  if ahead == nil then return {'ok', at, -1, deleted} end
  return {'ok', at, added - ahead, deleted}
end
if ahead == nil then return {'unknown'} end
return {'ok', added, ahead, deleted}`,
);

/** The arguments of a start call (after the script and its key). */
export function startArgs(at: string): Arg[] {
  return ['start', at, COUNT_CAP, '', ''];
}

/** What the start call says: where the cursor starts, the ledger's base when known, the stream's deleted count. */
export function parseStartReply(reply: unknown): {
  status: string;
  cursor: string;
  base: number | undefined;
  deleted: number;
} {
  const r = Array.isArray(reply) ? (reply as unknown[]) : [];
  const base = Number(r[2]);
  return {
    status: str(r[0]),
    cursor: str(r[1]),
    base: Number.isFinite(base) && base >= 0 ? base : undefined,
    deleted: Number(r[3]),
  };
}

/** A snapshot of a stream's reading taken when a check is sent: what the check's answer is about. */
export interface CheckPoint {
  readonly cursor: string;
  readonly read: number;
}

/**
 * One stream's ledger in a reader. The reader counts what it reads; checks
 * (see `readerPosition`) turn that into the exact number lost.
 */
export class LossLedger {
  /** Entries never this reader's (see the file comment); undefined until a check can tell. */
  #base: number | undefined;
  /** Entries read from this stream (delivered or filtered out). */
  read = 0;
  /** Entries found lost so far. */
  lost = 0;
  /** The cursor of the last exact check: nothing deleted after it since means nothing more lost. */
  exactAt = '';
  /** The stream's deleted count (entries-added - length) at the last exact check: unchanged, nothing more lost. */
  deletedAtExact: number | undefined;
  /** Reads since the last check. */
  dirty = false;
  /** A check is in flight: one at a time, so that answers apply in order. */
  checking = false;
  /** Batches read so far: an answer is stale when a batch arrived between its question and it. */
  batches = 0;
  /** When the last check was sent (ms). */
  lastCheck = 0;
  /** The time between two checks: CHECK_INTERVAL_MS, or longer after slow checks. */
  gap = CHECK_INTERVAL_MS;
  #sentAt = 0;
  /** The stream key was missing at the last check: told once. */
  keyGone = false;
  /** Checks are impossible (Redis before 7.0): told once, then never tried. */
  disabled = false;

  constructor(base: number | undefined, cursor: string, deleted?: number) {
    this.#base = base;
    // At the start nothing is lost yet, so a start with a known base is an exact point.
    if (base !== undefined) {
      this.exactAt = cursor;
      this.deletedAtExact = deleted;
    }
  }

  /** The arguments of a check about `point` (after the script and its key). */
  checkArgs(point: CheckPoint): Arg[] {
    return ['check', point.cursor, COUNT_CAP, this.exactAt, this.deletedAtExact ?? ''];
  }

  /** Records a batch of `n` entries read. */
  onRead(n: number): void {
    if (n === 0) return;
    this.read += n;
    this.batches++;
    this.dirty = true;
  }

  /** True when a check should be sent now. */
  due(now: number): boolean {
    return this.dirty && !this.checking && !this.disabled && now - this.lastCheck >= this.gap;
  }

  /** Marks a check sent at `now` about `point`. */
  begin(now: number, cursor: string): CheckPoint {
    this.checking = true;
    this.dirty = false;
    this.lastCheck = now;
    this.#sentAt = performance.now();
    return { cursor, read: this.read };
  }

  /**
   * Applies a check's answer about `point`; returns how many more entries
   * are now known lost, or `'nokey'` (first time only), `'unsupported'`, or
   * `'retry'` (not known yet: checked again after the next reads or the interval).
   */
  apply(reply: unknown, point: CheckPoint): number | 'nokey' | 'unsupported' | 'retry' {
    this.#done();
    const r = Array.isArray(reply) ? (reply as unknown[]) : [];
    const status = str(r[0]);
    if (status === 'same') {
      this.exactAt = point.cursor;
      this.deletedAtExact = Number(r[1]);
      this.keyGone = false;
      return 0;
    }
    if (status === 'ok') {
      this.keyGone = false;
      const added = Number(r[1]);
      const ahead = Number(r[2]);
      this.deletedAtExact = Number(r[3]);
      if (this.#base === undefined) {
        // The first exact point of a reader that started inside a long stream: nothing lost before it is known.
        this.#base = added - point.read - ahead - this.lost;
      }
      const total = added - this.#base - point.read - ahead;
      this.exactAt = point.cursor;
      if (total >= this.lost) {
        const more = total - this.lost;
        this.lost = total;
        return more;
      }
      // Fewer than already counted: the key was deleted and created again
      // between checks (or Redis lost data). Count from here.
      this.#base = added - point.read - ahead - this.lost;
      return 0;
    }
    this.dirty = true;
    if (status === 'nokey') {
      // A new key counts its entries from 0: the ledger goes on from there.
      this.#base = -point.read - this.lost;
      this.exactAt = '';
      this.deletedAtExact = undefined;
      const first = !this.keyGone;
      this.keyGone = true;
      this.dirty = false;
      return first ? 'nokey' : 0;
    }
    if (status === 'unsupported') {
      this.disabled = true;
      return 'unsupported';
    }
    return 'retry';
  }

  /** A check failed (connection...): try again later. */
  failed(): void {
    this.#done();
    this.dirty = true;
  }

  #done(): void {
    this.checking = false;
    const spaced = CHECK_TIME_SHARE * (performance.now() - this.#sentAt);
    // Bounded: a stalled event loop must not put losses off for long.
    this.gap = Math.min(MAX_CHECK_GAP_MS, Math.max(CHECK_INTERVAL_MS, spaced));
  }
}

/** One stream of a reader. */
export interface ReadStream {
  readonly stream: StreamHandle;
  /** ID of the last entry read (or the resolved start): the cursor never moves back to `$`. */
  cursor: string;
  /** What was read from it and found lost. */
  readonly ledger: LossLedger;
}

/** The start of a stream's cursor, and its ledger, read atomically so that nothing is counted twice or missed. */
export async function startOf(stream: StreamHandle, start: ResolvedStart): Promise<ReadStream> {
  let reply: unknown;
  try {
    const at = start.kind === 'newest' ? '$' : start.id;
    reply = await evalScript(stream.driver, readerPosition, [stream.key], startArgs(at));
  } catch (err) {
    throw toPulseError(err, `read the position of stream ${stream.name}`);
  }
  const { status, cursor, base, deleted } = parseStartReply(reply);
  if (status !== 'ok') {
    // Redis before 7.0: reading works, counting losses does not.
    const ledger = new LossLedger(undefined, '');
    ledger.disabled = true;
    return { stream, cursor: start.kind === 'newest' ? await lastId(stream) : start.id, ledger };
  }
  return { stream, cursor, ledger: new LossLedger(base, cursor, deleted) };
}

/** The last entry's ID now; `0-0` for an empty stream (Redis before 7.0 only). */
async function lastId(stream: StreamHandle): Promise<string> {
  try {
    const last = await stream.driver.send(['XREVRANGE', stream.key, '+', '-', 'COUNT', 1], stream.key);
    const id = (Array.isArray(last) ? (last[0] as unknown[] | undefined) : undefined)?.[0];
    return id === undefined ? '0-0' : str(id);
  } catch (err) {
    throw toPulseError(err, `read last entry of stream ${stream.name}`);
  }
}
