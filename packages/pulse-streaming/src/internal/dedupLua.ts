/**
 * The dedup parts of the add script (addScripts.ts, SEMANTICS.md section 8):
 * records dedupId -> entry ID in two hashes (`dedupKeys`), the current one
 * (`KEYS[2]`) and the previous one (`KEYS[3]`), rotated each window. A
 * record's window ends `dedupWindowMs` (`ARGV[5]`) after the millisecond of
 * its entry ID, so no per-record expiry is written; the current hash holds in
 * field '' (never a dedupId) the server time it began, read with the lookup.
 */

/**
 * Declares `known` (dedupId -> the ID it resolves to: records whose window
 * has not ended, and events of this call added so far), `fresh`/`nf` (the
 * records to write), `now`, `since`, and `lookup(dedups, nd)`, which reads the
 * records of a call's dedupIds once for the call and rotates the hashes when
 * the current one is a window old.
 */
export const DEDUP_LOOKUP = `local window = tonumber(ARGV[5])
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

/** Writes the records of the events added (`fresh`), in one HSET; sets `deduped`. */
export const DEDUP_RECORD = `-- The records of the events added (not of those after an error), in one write.
if nf > 0 then
  if not since then
    fresh[nf + 1] = ''
    fresh[nf + 2] = string.format('%d', now)
    nf = nf + 2
  end
  redis.call('HSET', KEYS[2], unpack(fresh, 1, nf))
  deduped = true
end`;

/**
 * With `deduped`: both hashes expire a window after the call, or with the
 * stream when it has a TTL that ends sooner. Expects `key` in scope.
 */
export const DEDUP_EXPIRY = `if deduped then
  -- Never outliving a TTL stream: its own expiry time, not its PTTL (a PTTL
  -- read and a PEXPIRE set a moment later could end a millisecond after it).
  local at
  if ARGV[3] ~= '' then
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
