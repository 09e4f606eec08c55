/**
 * The dedup parts of the add script (addScripts.ts, SEMANTICS.md section 8):
 * records dedupId -> entry ID in two hashes (`dedupKeys`), the current one
 * (`KEYS[2]`) and the previous one (`KEYS[3]`), rotated each window. A
 * record's window ends `dedupWindowMs` (`ARGV[5]`) after the millisecond of
 * its entry ID, so no per-record expiry is written; the current hash holds in
 * field '' (never a dedupId) the server time it began, read with the lookup.
 */
import { CMP } from './lua.js';

/**
 * A field of the current hash that no dedupId can be: the byte 0xFF never
 * occurs in UTF-8, and dedupIds are well-formed text sent as UTF-8. With a
 * sliding TTL it holds the newest entry ID the hashes recorded (see `STALE`).
 */
const MARK = "'\\255'";

/**
 * `stale()`, for a stream with a sliding TTL, whose hashes outlive it (they
 * live their window, while later adds, ours or Go's, extend the stream's
 * expiry and not theirs): true when they were written for an earlier life of
 * the stream, which expired (or was deleted) since, and maybe was created
 * again by adds without a dedupId. Their mark, the newest entry ID they
 * recorded, was an entry of that life: the stream is the same while it holds
 * an entry at or before the mark, or its max-deleted-entry-id is at or after
 * it (trimmed or removed); a stream created after it has only later IDs and
 * deleted none before it. Without a mark (hashes written without a sliding
 * TTL, which never outlive the stream) they are trusted. Expects `key`.
 */
const STALE = `${CMP}
local function stale()
  local mark = redis.call('HGET', KEYS[2], ${MARK}) or redis.call('HGET', KEYS[3], ${MARK})
  if not mark then return false end
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
  if first and cmp(first[1], mark) <= 0 then return false end
  if redis.call('EXISTS', key) == 0 then return true end
  local info = redis.call('XINFO', 'STREAM', key)
  for j = 1, #info, 2 do
    if info[j] == 'max-deleted-entry-id' then return cmp(info[j + 1], mark) < 0 end
  end
  return false
end`;

/**
 * Declares `known` (dedupId -> the ID it resolves to: records whose window
 * has not ended, and events of this call added so far), `fresh`/`nf` (the
 * records to write), `now`, `since`, and `lookup(dedups, nd)`, which reads the
 * records of a call's dedupIds once for the call and rotates the hashes when
 * the current one is a window old.
 */
export const DEDUP_LOOKUP = `local window = tonumber(ARGV[5])
local sliding = ARGV[3] ~= '' and ARGV[4] == 'sliding'
${STALE}
-- Dedup: the dedupIds of the call, looked up once for the call, not per event.
-- known: dedupId -> the ID it resolves to, for the records whose window has not
-- ended and for the events of this call added so far. since: when the current
-- hash began (nil: it does not exist, or was just rotated away).
local known, fresh, nf, now, since = {}, {}, 0, nil, nil
-- A record's window ends dedupWindowMs after the millisecond of its entry ID.
local function live(id)
  return tonumber(string.match(id, '^%d+')) + window > now
end
local function lookup(dedups, nd)
  if nd == 0 then return end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  -- Field '' (never a dedupId) holds when the current hash began.
  local got = redis.call('HMGET', KEYS[2], '', unpack(dedups, 1, nd))
  since = tonumber(got[1])
  if sliding and (since or redis.call('EXISTS', KEYS[3]) == 1) and stale() then
    -- Records of an earlier life of the stream: none of its IDs is in this one.
    redis.call('UNLINK', KEYS[2], KEYS[3])
    since = nil
    return
  end
  -- older: the previous hash exists and was not just looked up (as the current one).
  local older = false
  if since and now - since >= window then
    -- Every record of the previous hash was written before the current one
    -- began, a window ago or more: all have ended. UNLINK first: RENAME would
    -- free a large hash in the server's main thread.
    redis.call('UNLINK', KEYS[3])
    redis.call('RENAME', KEYS[2], KEYS[3])
    since = nil
  else
    older = redis.call('EXISTS', KEYS[3]) == 1
  end
  -- Not in the current hash: maybe in the previous one.
  local missing, nm = {}, 0
  for j = 1, nd do
    local id = got[j + 1]
    if id then
      if live(id) then known[dedups[j]] = id end
    elseif older then
      nm = nm + 1
      missing[nm] = dedups[j]
    end
  end
  if nm > 0 then
    got = redis.call('HMGET', KEYS[3], unpack(missing, 1, nm))
    for j = 1, nm do
      local id = got[j]
      if id and live(id) then known[missing[j]] = id end
    end
  end
end`;

/**
 * Writes the records of the events added (`fresh`), in one HSET, with the
 * mark of a sliding TTL (the newest entry ID recorded, see `STALE`); sets
 * `deduped`.
 */
export const DEDUP_RECORD = `-- The records of the events added (not of those after an error), in one write.
if nf > 0 then
  local newest = fresh[nf]
  if not since then
    fresh[nf + 1] = ''
    fresh[nf + 2] = string.format('%d', now)
    nf = nf + 2
  end
  if sliding then
    fresh[nf + 1] = ${MARK}
    fresh[nf + 2] = newest
    nf = nf + 2
  end
  redis.call('HSET', KEYS[2], unpack(fresh, 1, nf))
  deduped = true
end`;

/**
 * With `deduped`: both hashes expire a window after the call, or with the
 * stream when it has a fixed TTL that ends sooner. Not with a sliding TTL:
 * later adds (without a dedupId, or Go's) extend the stream and not the
 * hashes, which would end before the window while the stream and the events
 * they recorded live on (outside review P: a retry then added a duplicate);
 * they live their window, and `STALE` drops them once the stream they were
 * written for is gone. Expects `key` in scope.
 */
export const DEDUP_EXPIRY = `if deduped then
  -- Never outliving a fixed-TTL stream: its own expiry time, not its PTTL (a
  -- PTTL read and a PEXPIRE set a moment later could end a millisecond after it).
  local at
  if ARGV[3] ~= '' and ARGV[4] ~= 'sliding' then
    local pttl = redis.call('PTTL', key)
    if pttl > 0 and pttl < tonumber(ARGV[5]) then at = redis.call('PEXPIRETIME', key) end
  end
  if at then
    redis.call('PEXPIREAT', KEYS[2], at)
    redis.call('PEXPIREAT', KEYS[3], at)
  else
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
    redis.call('PEXPIRE', KEYS[3], ARGV[5])
  end
end`;
