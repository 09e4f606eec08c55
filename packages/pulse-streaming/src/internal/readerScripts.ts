/**
 * The scripts a reader's loss ledger (readerLoss.ts) asks Redis with, and
 * how their answers read. Each reads `XINFO STREAM` (Redis 7.0) and, when it
 * must, counts entries around the cursor, atomically.
 */
import type { Arg } from './driver.js';
import { CMP } from './lua.js';
import { str } from './replies.js';
import { Script } from './script.js';

/** Most entries a check counts on the server (copying entries through Lua costs). */
export const COUNT_CAP = 1000;

/** Reads `XINFO STREAM` into `s`, or answers for a missing key or another type. */
const INFO = `local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
if not ok then
  local t = redis.call('TYPE', KEYS[1])
  t = t['ok'] or t
  if t == 'none' then return nil end
  return info
end
local s = {}
for j = 1, #info, 2 do s[info[j]] = info[j + 1] end
return s`;

/**
 * KEYS: the stream. ARGV: 'start' or 'check', the cursor ('$' at start: the
 * stream's end), the counting cap, then for a check the cursor of the last
 * exact check and the stream's deleted count (entries-added - length) then
 * ('' for none); optionally (a check) the last ID generated at the last
 * check that told what was ahead, entries-added and max-deleted-entry-id at
 * the last check, '1' when the cursor is an entry this reader read (else
 * ''), then IDs it read, oldest first (see `back` below).
 * Fails with Redis' error for a key of another type (a start from an ID
 * leaves it to the first read). Returns {'nokey'} (check) | {'unsupported'}
 * (before Redis 7.0), or:
 * - start: {'ok', cursor, base (-1 unknown), deleted, entries-added,
 *   max-deleted-entry-id, why the base is unknown: 'future' (the cursor is
 *   past the last generated ID and past Redis' clock: entries up to it may
 *   still be added, and are not the reader's) |
 *   'long' (too many entries on both sides to count: `countAhead` counts up
 *   to the last generated ID) | '', then the last generated ID (none for a
 *   missing key)};
 * - check: {'ok', entries-added, ahead, deleted, max-deleted-entry-id, first
 *   ID ('' empty), last generated ID} | {'same', deleted, entries-added,
 *   max-deleted-entry-id, first ID, last generated ID} (nothing lost since
 *   the last exact check) | {'back', where the cursor goes back to,
 *   entries-added, deleted, max-deleted-entry-id, first ID, last generated
 *   ID} (a cursor it read is past the last generated ID: gone back in time)
 *   | {'unknown'}. 'ok', 'same' and 'back' end with `kept`: when the stream
 *   went back in time, the entries after the cursor up to the given last ID
 *   generated that are still there (-1: more than the cap; '' not counted).
 */
export const readerPosition = new Script(
  'readerPosition',
  `${CMP}
local mode, at, cap, exact, deletedThen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local keptOut = ''
-- The cursor is before Redis' clock: entries added from now on get later IDs.
local function beforeClock()
  local t = redis.call('TIME')
  return cmp(at, t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)) .. '-0') < 0
end
local s = (function() ${INFO} end)()
if s == nil then
  if mode ~= 'start' then return {'nokey'} end
  if at == '$' or at == '0-0' then return {'ok', '0-0', 0, 0, 0, '0-0', ''} end
  -- A start before Redis' clock (a past Date): entries added from now on
  -- get later IDs, so every one is the reader's, as with 'oldest'.
  if beforeClock() then return {'ok', at, 0, 0, 0, '0-0', ''} end
  -- Entries up to the cursor may be added yet: not the reader's (see 'future').
  return {'ok', at, -1, 0, 0, '0-0', 'future'}
end
if s['length'] == nil then
  -- Another type: a reader from a given ID finds it on its first read.
  if mode == 'start' and at ~= '$' then return {'ok', at, -1, 0, 0, '0-0', ''} end
  return s
end
local added, md = tonumber(s['entries-added']), s['max-deleted-entry-id']
if added == nil or md == nil then return {'unsupported'} end
local len = tonumber(s['length'])
local deleted = added - len
local first = len > 0 and s['first-entry'][1]
local last = len > 0 and s['last-entry'][1]
local lg = s['last-generated-id']
if mode == 'check' then
  -- Gone back in time (the counters or the last generated ID went back): the
  -- entries after the cursor up to the last ID generated at the last told
  -- check that are still here were not lost ('' not asked, -1 too many).
  local upto, addedThen, mdThen = ARGV[6] or '', tonumber(ARGV[7] or ''), ARGV[8] or ''
  if upto ~= '' and addedThen ~= nil and mdThen ~= '' and (added < addedThen or cmp(md, mdThen) < 0 or cmp(lg, upto) < 0) then
    local n = len == 0 and 0 or #redis.call('XRANGE', KEYS[1], '(' .. at, upto, 'COUNT', cap + 1)
    keptOut = n <= cap and n or -1
  end
  -- A cursor this reader read is past the last generated ID: entries were
  -- taken back (a restart from an older snapshot, a failover to a replica
  -- behind). New entries may come before the cursor: it goes back to the
  -- newest of the given IDs it read that is still here (so, from before the
  -- fault), or the stream's beginning.
  if ARGV[9] == '1' and cmp(lg, at) < 0 then
    local to = '0-0'
    for i = #ARGV, 10, -1 do
      if cmp(ARGV[i], lg) <= 0 and #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 1 then
        to = ARGV[i]
        break
      end
    end
    return {'back', to, added, deleted, md, first or '', lg, keptOut}
  end
end
if mode == 'start' then
  if at == '$' then return {'ok', lg, added, deleted, added, md, '', lg} end
  if cmp(at, lg) > 0 then
    -- Past the last entry but before Redis' clock (a saved cursor of a stream created again, a
    -- past Date): entries added from now on get later IDs, every one the reader's, so the base
    -- is known (left to the first check, entries trimmed before it went uncounted: review AE).
    if beforeClock() then return {'ok', at, added, deleted, added, md, '', lg} end
    return {'ok', at, -1, deleted, added, md, 'future', lg}
  end
end
local ahead
if len == 0 or cmp(last, at) <= 0 then
  ahead = 0
elseif cmp(first, at) > 0 then
  ahead = len
elseif mode == 'check' and exact ~= '' and (deleted == deletedThen or (cmp(md, exact) <= 0 and cmp(first, exact) <= 0)) then
  -- Nothing deleted since the last exact check, or only entries it had read
  -- (XDEL at or before it, trimming short of it): no more lost.
  return {'same', deleted, added, md, first or '', lg, keptOut}
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
  if ahead == nil then return {'ok', at, -1, deleted, added, md, 'long', lg} end
  return {'ok', at, added - ahead, deleted, added, md, '', lg}
end
if ahead == nil then return {'unknown'} end
return {'ok', added, ahead, deleted, md, first or '', lg, keptOut}`,
);

/** The arguments of a start call (after the script and its key). */
export function startArgs(at: string): Arg[] {
  return ['start', at, COUNT_CAP, '', ''];
}

/** What the start call says. */
export interface StartReply {
  readonly status: string;
  /** Where the cursor starts. */
  readonly cursor: string;
  /** The ledger's base when known. */
  readonly base: number | undefined;
  /** The stream's deleted count, entries-added and max-deleted-entry-id then. */
  readonly deleted: number;
  readonly added: number;
  readonly maxDeleted: string;
  /** Why the base is unknown (see `readerPosition`). */
  readonly why: '' | 'future' | 'long';
  /** The last ID generated then ('' when the key was missing). */
  readonly lastGenerated: string;
}

export function parseStartReply(reply: unknown): StartReply {
  const r = Array.isArray(reply) ? (reply as unknown[]) : [];
  const base = Number(r[2]);
  const why = str(r[6]);
  return {
    status: str(r[0]),
    cursor: str(r[1]),
    base: Number.isFinite(base) && base >= 0 ? base : undefined,
    deleted: Number(r[3]),
    added: Number(r[4]),
    maxDeleted: r[5] === undefined ? '0-0' : str(r[5]),
    why: why === 'future' || why === 'long' ? why : '',
    lastGenerated: r[7] === undefined ? '' : str(r[7]),
  };
}

/**
 * One page of the count of the entries ahead of a start inside a long
 * stream (see readerStart.ts). KEYS: the stream. ARGV: the page's start
 * (exclusive), its end (inclusive: the last ID generated at the start), the
 * page size, the reader's start ID, and the stream's deleted count at the
 * start. Returns {'ok', entries in the page, its last ID} | {'changed'}: an
 * entry after the start may have been deleted since (the count would miss
 * it), or the key is gone.
 */
export const countAhead = new Script(
  'countAhead',
  `${CMP}
local from, to, cap, start, deleted0 = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local s = (function() ${INFO} end)()
if s == nil or s['length'] == nil then return {'changed'} end
local deleted = tonumber(s['entries-added']) - tonumber(s['length'])
-- Deleted since the start, and maybe after it: max-deleted-entry-id only ever grows.
if deleted ~= deleted0 and cmp(s['max-deleted-entry-id'], start) > 0 then return {'changed'} end
local r = redis.call('XRANGE', KEYS[1], '(' .. from, to, 'COUNT', cap)
if #r == 0 then return {'ok', 0, from} end
return {'ok', #r, r[#r][1]}`,
);

/** What a check says (see `readerPosition`). */
export type CheckReply =
  | {
      readonly status: 'ok';
      readonly added: number;
      readonly ahead: number;
      readonly deleted: number;
      readonly maxDeleted: string;
      /** The first entry's ID ('' for none), and the last generated ID ('' unknown): see `sameKey` (readerLoss.ts). */
      readonly first: string;
      readonly lastGen: string;
    }
  | {
      readonly status: 'same';
      readonly added: number;
      readonly deleted: number;
      readonly maxDeleted: string;
      readonly first: string;
      readonly lastGen: string;
    }
  | {
      readonly status: 'back';
      /** Where the cursor goes back to. */
      readonly to: string;
      readonly added: number;
      readonly deleted: number;
      readonly maxDeleted: string;
      readonly first: string;
      readonly lastGen: string;
    }
  | { readonly status: 'nokey' | 'unsupported' | 'unknown' };

/**
 * Entries after the cursor, up to the last ID generated at the last told
 * check, still there after the stream went back in time: a number, 'many'
 * (more than the cap), or undefined (not counted: it did not go back).
 */
export type Kept = number | 'many' | undefined;

/** A check's reply and its `kept` (see `readerPosition`). */
export type CheckAnswer = CheckReply & { readonly kept?: Kept };

function keptOf(v: unknown): Kept {
  if (v === undefined || str(v) === '') return undefined;
  const n = Number(v);
  return n >= 0 ? n : 'many';
}

export function parseCheckReply(reply: unknown): CheckAnswer {
  const r = Array.isArray(reply) ? (reply as unknown[]) : [];
  const status = str(r[0]);
  const id = (v: unknown): string => (v === undefined ? '0-0' : str(v));
  const opt = (v: unknown): string => (v === undefined ? '' : str(v));
  if (status === 'ok') {
    const [, added, ahead, deleted, md, first, lastGen, kept] = r;
    return {
      status,
      kept: keptOf(kept),
      added: Number(added),
      ahead: Number(ahead),
      deleted: Number(deleted),
      maxDeleted: id(md),
      first: opt(first),
      lastGen: opt(lastGen),
    };
  }
  if (status === 'same') {
    const [, deleted, added, md, first, lastGen, kept] = r;
    return {
      status,
      kept: keptOf(kept),
      deleted: Number(deleted),
      added: Number(added),
      maxDeleted: id(md),
      first: opt(first),
      lastGen: opt(lastGen),
    };
  }
  if (status === 'back') {
    const [, to, added, deleted, md, first, lastGen, kept] = r;
    return {
      status,
      to: str(to),
      added: Number(added),
      deleted: Number(deleted),
      maxDeleted: id(md),
      first: opt(first),
      lastGen: opt(lastGen),
      kept: keptOf(kept),
    };
  }
  if (status === 'nokey' || status === 'unsupported') return { status };
  return { status: 'unknown' };
}
