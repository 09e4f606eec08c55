/**
 * The dedup parts of the add script (addScripts.ts, SEMANTICS.md section 8):
 * records dedupId -> entry ID in two hashes (`dedupKeys`), the current one
 * (`KEYS[2]`) and the previous one (`KEYS[3]`), rotated each window. A
 * record's window ends `dedupWindowMs` (`ARGV[5]`) after the millisecond of
 * its entry ID, so no per-record expiry is written; the current hash holds in
 * field '' (never a dedupId) the server time it began, read with the lookup.
 * Adds with different windows may share a stream (an application's 10
 * minutes, the CLI's 2): the hashes keep the largest window they were
 * written with (`SPAN_FIELD`), and every add rotates, expires and judges records
 * by the larger of it and its own, so a shorter window never cuts records
 * of a longer one short (review L).
 */
import { CMP } from './lua.js';

/**
 * A field of the current hash that no dedupId can be: the byte 0xFF never
 * occurs in UTF-8, and dedupIds are well-formed text sent as UTF-8. It holds
 * the newest entry ID the hashes recorded (see `STALE`), written by every
 * call that records, whatever the stream's TTL.
 */
const MARK = "'\\255'";

/**
 * A field of the current hash that no dedupId can be either (the byte 0xFE
 * never occurs in UTF-8): the largest `dedupWindowMs` of the adds that
 * recorded into the hashes, carried to the new current hash at rotation.
 * Without it a call's own window would rule: one add with a shorter window
 * rotated (UNLINKing records of a longer one still live) and expired both
 * hashes by its own, and the longer window's retry was added twice. It
 * never decreases while the hashes live: a stream's window lowered takes
 * effect once they expire (no add with a dedupId for the larger window) or
 * `destroy()` deletes them. Absent (hashes of an older version of this
 * library): the caller's window alone, as before.
 */
const SPAN_FIELD = "'\\254'";

/**
 * `stale(mark)`: true when the hashes were written for an earlier life of the
 * stream, which ended since (expired, with our TTL or one a Go producer set;
 * deleted, by Go's `Destroy`, which knows nothing of these hashes) and maybe
 * began again (adds without a dedupId, Go's adds, a sink's MKSTREAM). Their
 * records then name entries that no longer exist: answering one would add
 * nothing and resolve to a gone ID, a silent loss (outside reviews P and I).
 * Run by every call that finds the hashes, not only with a sliding TTL: the
 * stream's own TTL option says nothing of what Go or a `DEL` does to its key.
 * Their mark, the newest entry ID they recorded, was an entry of that life:
 * the stream is the same while it holds an entry at or before the mark (the
 * common case, one `XRANGE ... COUNT 1` per call, not per event), or its
 * max-deleted-entry-id is at or after it (removed with `XDEL`); a stream
 * created after it has only later IDs. Trimming does not move
 * max-deleted-entry-id (Redis 7.0), so a stream trimmed past the newest
 * record reads as another life: the hashes are dropped, and a retry of an
 * event already trimmed away is added again, a duplicate rather than a loss.
 * Without a mark (hashes written by an older version of this library) only a
 * stream that does not exist says so. `stream.remove()` runs it too, before
 * its `XDEL` (see `DEDUP_DROP_STALE`): a deletion in a new life would
 * otherwise move max-deleted-entry-id past the old mark and make that life
 * read as the old one. Expects `key` and `cmp` (lua.ts `CMP`).
 */
const STALE = `local function stale(mark)
  if not mark then return redis.call('EXISTS', key) == 0 end
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
 * `dropStaleDedup(current, old)`: UNLINKs both dedup hashes when they were
 * written for an earlier life of the stream `key` (see `STALE`). For
 * `stream.remove()`, the library's only `XDEL` of a stream, before it
 * deletes: after it, a removal in a new life (its entries all after the old
 * mark) would set max-deleted-entry-id past the mark, the old life would
 * pass for this one, and a retry would resolve to a gone ID, nothing added
 * (review L). An `XDEL` made outside the library stays a gap (README
 * "Idempotent publish"). Two commands when no hash exists. Expects `key`
 * and `cmp`.
 */
export const DEDUP_DROP_STALE = `${STALE}
local function dropStaleDedup(current, old)
  local mark = redis.call('HGET', current, ${MARK})
  if not mark then
    if redis.call('EXISTS', current, old) == 0 then return end
    mark = redis.call('HGET', old, ${MARK})
  end
  if stale(mark) then redis.call('UNLINK', current, old) end
end`;

/**
 * Declares the state the dedup fragments share across the add script:
 * `deduped` (something was recorded), `span` (the window the hashes are
 * rotated and expired by: the larger of the caller's and `SPAN_FIELD`),
 * `created` (the record made the current hash, which so has no expiry
 * yet). At the top of the script: `DEDUP_EXPIRY` runs outside the block
 * that looks up and records.
 */
export const DEDUP_STATE = 'local deduped, span, created = false, 0, false';

/**
 * Declares `known` (dedupId -> the ID it resolves to: records whose window
 * has not ended, and events of this call added so far), `fresh`/`nf` (the
 * records to write), `now`, `since`, and `lookup(dedups, nd)`, which reads the
 * records of a call's dedupIds once for the call and rotates the hashes when
 * the current one is a window old.
 */
export const DEDUP_LOOKUP = `local window = tonumber(ARGV[5])
span = window
${CMP}
${STALE}
-- Dedup: the dedupIds of the call, looked up once for the call, not per event.
-- known: dedupId -> the ID it resolves to, for the records whose window has not
-- ended and for the events of this call added so far. since: when the current
-- hash began (nil: it does not exist, or was just rotated away).
local known, fresh, nf, now, since = {}, {}, 0, nil, nil
-- kept: the span the current hash holds (nil: none, or no current hash).
local kept = nil
-- hit: some dedupId resolved to a live record of the hashes; hitMark: the newest
-- such ID; seenMark: the mark the lookup read (see DEDUP_RECORD's hit branch).
local hit, hitMark, seenMark = false, nil, nil
-- A record's window ends span (the largest dedupWindowMs the hashes were
-- written with, or the caller's when larger) after the millisecond of its entry ID.
local function live(id)
  return tonumber(string.match(id, '^%d+')) + span > now
end
-- A live record of the hashes: dedupId d resolves to id.
local function found(d, id)
  known[d] = id
  hit = true
  if not hitMark or cmp(id, hitMark) > 0 then hitMark = id end
end
-- The hashes' stored window (a reply of HMGET) raises span.
local function widen(w)
  w = tonumber(w)
  if w and w > span then span = w end
end
local function lookup(dedups, nd)
  if nd == 0 then return end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  -- Field '' (never a dedupId) holds when the current hash began, the mark the
  -- newest entry ID recorded, the span field the largest window: read with the
  -- records, no command more.
  local got = redis.call('HMGET', KEYS[2], '', ${MARK}, ${SPAN_FIELD}, unpack(dedups, 1, nd))
  since = tonumber(got[1])
  local mark = got[2]
  kept = tonumber(got[3])
  widen(kept)
  -- older: the previous hash exists (nil: not asked yet).
  local older = nil
  if not since then
    older = redis.call('EXISTS', KEYS[3]) == 1
    if older then
      local o = redis.call('HMGET', KEYS[3], ${MARK}, ${SPAN_FIELD})
      mark = o[1]
      widen(o[2])
    end
  end
  seenMark = mark
  if (since or older) and stale(mark) then
    -- Records of an earlier life of the stream: none of its IDs is in this one.
    redis.call('UNLINK', KEYS[2], KEYS[3])
    since = nil
    span = window
    return
  end
  -- span, not the caller's window: the previous hash may hold records of a
  -- longer window than the caller's, still live.
  if since and now - since >= span then
    -- Every record of the previous hash was written before the current one
    -- began, a window ago or more: all have ended. UNLINK first: RENAME would
    -- free a large hash in the server's main thread. The previous hash is
    -- then the one just looked up: nothing more to look for.
    redis.call('UNLINK', KEYS[3])
    redis.call('RENAME', KEYS[2], KEYS[3])
    since = nil
    older = false
  elseif older == nil then
    older = redis.call('EXISTS', KEYS[3]) == 1
  end
  -- Not in the current hash: maybe in the previous one.
  local missing, nm = {}, 0
  for j = 1, nd do
    local id = got[j + 3]
    if id then
      if live(id) then found(dedups[j], id) end
    elseif older then
      nm = nm + 1
      missing[nm] = dedups[j]
    end
  end
  if nm > 0 then
    got = redis.call('HMGET', KEYS[3], unpack(missing, 1, nm))
    for j = 1, nm do
      local id = got[j]
      if id and live(id) then found(missing[j], id) end
    end
  end
end`;

/**
 * Writes the records of the events added (`fresh`), in one HSET, with the
 * mark (the newest entry ID recorded, see `STALE`) and, when the hash is new
 * or the caller's window larger than the stored one, `SPAN_FIELD` (a new
 * current hash inherits the span of the one it replaces: the previous
 * hash's records keep it); sets `deduped` and `created`. A call that
 * recorded nothing but was answered by a record (`hit`) with a window
 * longer than the stored one writes `SPAN_FIELD` alone (and the fields of a
 * new current hash), so that its window rules the hashes' rotation and
 * expiry as a record's would.
 */
export const DEDUP_RECORD = `-- The records of the events added (not of those after an error), in one write.
if nf > 0 then
  local newest = fresh[nf]
  if not since then
    fresh[nf + 1] = ''
    fresh[nf + 2] = string.format('%d', now)
    nf = nf + 2
    created = true
  end
  -- Only when it changes: most calls write the records and the mark alone.
  if created or not kept or window > kept then
    fresh[nf + 1] = ${SPAN_FIELD}
    fresh[nf + 2] = string.format('%d', span)
    nf = nf + 2
  end
  fresh[nf + 1] = ${MARK}
  fresh[nf + 2] = newest
  nf = nf + 2
  redis.call('HSET', KEYS[2], unpack(fresh, 1, nf))
  deduped = true
elseif hit and (not kept or window > kept) then
  -- Nothing recorded, but a record answered an add whose window is longer
  -- than the hashes keep: that window is kept, as a record would keep it, or
  -- the hashes expired (or rotated away) after the shorter one and this
  -- producer's retry within its own window was added again (outside review AC).
  local f = {}
  if not since then
    f = {'', string.format('%d', now), ${MARK}, seenMark or hitMark}
    created = true
  end
  f[#f + 1] = ${SPAN_FIELD}
  f[#f + 1] = string.format('%d', span)
  -- Best effort: the call's first write, which Redis refuses at maxmemory
  -- (OOM), read-only or failing to persist. Refused, the hit still answers
  -- (its event is stored): raised, it failed the whole call, the retry said
  -- "not stored" (outside review AM).
  local w = redis.pcall('HSET', KEYS[2], unpack(f))
  deduped = not (type(w) == 'table' and w.err)
end`;

/**
 * With `deduped`: both hashes expire `span` after the call (never sooner
 * than they would: `GT`, Redis 7.0, so an add with a shorter window never
 * cuts another's records short; a plain `PEXPIRE` for a current hash this
 * call created, which `GT` would leave without expiry), or with the stream
 * when it has a fixed TTL that ends sooner. Not with a sliding TTL:
 * later adds (without a dedupId, or Go's) extend the stream and not the
 * hashes, which would end before the window while the stream and the events
 * they recorded live on (outside review P: a retry then added a duplicate);
 * they live their window, and `STALE` drops them once the stream they were
 * written for is gone (as it does whatever the TTL: Go may set one, or
 * delete the stream). Expects `key` in scope.
 */
export const DEDUP_EXPIRY = `if deduped then
  -- Never outliving a fixed-TTL stream: its own expiry time, not its PTTL (a
  -- PTTL read and a PEXPIRE set a moment later could end a millisecond after it).
  local at
  if ARGV[3] ~= '' and ARGV[4] ~= 'sliding' then
    local pttl = redis.call('PTTL', key)
    if pttl > 0 and pttl < span then at = redis.call('PEXPIRETIME', key) end
  end
  if at then
    redis.call('PEXPIREAT', KEYS[2], at)
    redis.call('PEXPIREAT', KEYS[3], at)
  else
    -- As text: a Lua number past 1e14 would reach Redis in exponent notation.
    local ms = string.format('%d', span)
    if created then redis.call('PEXPIRE', KEYS[2], ms) else redis.call('PEXPIRE', KEYS[2], ms, 'GT') end
    redis.call('PEXPIRE', KEYS[3], ms, 'GT')
  end
end`;
