/**
 * Scripts that find losses: what trimming and deletions took from a sink
 * before it read it (`checkTrimmed`), and deletions recorded so that none
 * hides a loss (`removeEntries`).
 */
import { DEDUP_DROP_STALE } from './dedupLua.js';
import { CMP } from './lua.js';
import { Script } from './script.js';
import { FOLLOW } from './scripts.js';

/**
 * The least time to live (ms) of `stream.remove()`'s keys (last removal,
 * removed counts) beside a TTL stream: they follow its expiry, but a sliding
 * TTL is extended by adds and not them, and only a sink's trim check (at
 * least every 5 s while an instance runs) extends them again. Expiring
 * before the stream would lose the counts of removed events not yet
 * reported and make its tombstones an unknown loss; outliving it a minute
 * does no harm (a new life of the stream has other IDs).
 */
const REMOVAL_KEYS_FLOOR_MS = 60_000;

/**
 * Counts entries trimmed before the sink's group read them, which
 * `XREADGROUP` jumps over without a word, so they are reported as lost, and
 * fixes the group's `entries-read` counter so they are counted once.
 * Entries stay out of Lua where
 * possible: copying them through a script costs more than the read itself.
 *
 * Two ways a read can jump:
 * - the group is behind the stream's first entry (trimming went past it):
 *   found before a read, which is why a busy sink runs this in the same MULTI
 *   just before its `XREADGROUP`;
 * - a blocking `XREADGROUP`, served after one command (a script, a
 *   transaction) added entries and trimmed some of them, delivered the
 *   survivors and counted only those. Found after the read: given an ID the
 *   group had reached before it (ARGV, per key), nothing can have been
 *   jumped while the stream still starts at or before that ID (trimming
 *   works from the front). Otherwise the group's true position is
 *   `entries-added` less the entries after its last-delivered ID, which are
 *   few right after a read; when more than ARGV[2] are, it does not count
 *   them and says so (verified 0): a later check will.
 *
 * Redis 7.0 does not persist `entries-read` with the reads (AOF and replicas
 * get XCLAIMs without it): after a restart or a failover it is behind and
 * would count phantom losses. So the first check after the sink reconnected
 * resyncs ('r'): it sets the counter to the group's true position without
 * counting anything, and says (unknown 1) when entries were certainly lost
 * (the group is behind the stream's first entry) but not how many.
 * An instance started after the restart saw no reconnect: each check keeps
 * the group's last-delivered ID and entries-read in the positions hash
 * (`positionsKey`; a write per check, none per event), and a Redis counter
 * below it is stale. At the same last-delivered ID the kept one is the true
 * one: the check sets it and counts from it, exactly. Past it (reads after
 * the last check) what lies between may be gone uncounted: the check
 * resyncs instead, and says how many is unknown when entries went.
 *
 * Deletions (XDEL) leave tombstones that make Redis' own position counters
 * unreliable. Those made with `stream.remove()` are accounted for (see
 * `removeEntries`), so positions stay exact past them; a deletion made
 * outside the library after the group's position makes the count unknown,
 * and the result says so (unknown 1) instead of counting nothing silently.
 * When the group's `entries-read` is invalid (Redis drops it after a read
 * across tombstones) the check resyncs it, counting nothing.
 * It also hands over the count of entries `stream.remove()` deleted before
 * the group read them (removed), once, and keeps the last-removal key and
 * the removed counts expiring with a TTL stream whose sliding TTL adds
 * extended (see `removeEntries`).
 *
 * KEYS: per stream its key, its last-removal key, its removed counts and its positions hash; or
 * one stream's key alone, for the resync of a sink that reconnected while the stream's hash slot
 * migrates (its other keys may be on the other node): nothing removed is handed over and no
 * position kept (the next check of all four does both), and tombstones are taken as made outside
 * the library (how many a loss took may then be said unknown).
 * ARGV: group, most entries to count, then per stream the ID to verify
 * from, '' not to verify, or 'r' to resync.
 * Returns per stream: {'ok', skipped, lastDeliveredId, verified (1 or 0), unknown (1 or 0), removed, lag, entries-read (both as Redis had them before the check, -1 unknown), first entry ID ('' none), pending, PTTL, last entry ID ('' none)} | {'nogroup'} | {'nokey'} | {'wrongtype'}.
 */
export const checkTrimmed = new Script(
  'checkTrimmed',
  `${CMP}
${FOLLOW}
-- Entries added to the stream in its life (XINFO STREAM entries-added).
local function streamAdded(key)
  local info = redis.call('XINFO', 'STREAM', key)
  for j = 1, #info, 2 do
    if info[j] == 'entries-added' then return tonumber(info[j + 1]) end
  end
  return 0
end
local group, cap = ARGV[1], tonumber(ARGV[2])
local out = {}
-- A stream's key alone (see KEYS above): its other keys are nil.
for i = 1, #KEYS == 1 and 1 or #KEYS / 4 do
  local key, dkey, rkey, pkey = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
  if not ok then
    local t = redis.call('TYPE', key)
    t = t['ok'] or t
    if t == 'none' then
      -- The positions of a stream gone are no group's any more: a new life starts from 0.
      if pkey then redis.call('DEL', pkey) end
      out[i] = {'nokey'}
    else
      out[i] = {'wrongtype'}
    end
  else
    local found, last, read, lag, read0, pending = false, nil, nil, nil, nil, 0
    for _, g in ipairs(groups) do
      local f = {}
      for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
      if f['name'] == group then
        found, last, read, lag, pending = true, f['last-delivered-id'], f['entries-read'], f['lag'], f['pending']
        read0 = read
        break
      end
    end
    if not found then
      -- The kept position stays for the instance that creates the group again: it counts from it
      -- what was trimmed while the group was missing, and drops it (recreateGroup, scripts.ts).
      out[i] = {'nogroup'}
    else
      local skipped, verified, unknown = 0, 1, 0
      local removed = rkey and tonumber(redis.call('HGET', rkey, group) or '0') or 0
      if removed > 0 then redis.call('HDEL', rkey, group) end
      local from = ARGV[2 + i]
      -- An invalid counter (a read across tombstones) is set again, counting nothing.
      local resync = from == 'r' or type(read) ~= 'number'
      read = tonumber(read) or -1
      local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
      local firstId = first[1] and first[1][1]
      -- A counter below the kept one is stale: Redis came back from its AOF without it (outside review AK).
      local kept = pkey and redis.call('HGET', pkey, group)
      local klast, kread = string.match(kept or '', '^(%S+) (%d+)$')
      kread = tonumber(kread)
      if kread and not resync and read < kread and (klast == '0-0' or kread > streamAdded(key)) then
        -- Not a position of this life of the stream (expired or deleted, and created again with
        -- its groups): at 0-0, a group that read nothing, as a new one is, or above what this
        -- life added. Trusted, it raised the new group's counter and losses went uncounted
        -- (outside review AN).
        redis.call('HDEL', pkey, group)
        kept, kread = nil, nil
      end
      if kread and not resync and read < kread then
        local c = cmp(last, klast)
        if c == 0 then
          read = kread
          redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', read)
        elseif c > 0 then
          resync = true
          -- What a blocking read may have jumped cannot be counted any more: said, not hidden.
          if from ~= '' and from ~= 'r' and firstId ~= nil and cmp(firstId, from) > 0 then unknown = 1 end
        end
      end
      local behind = firstId ~= nil and cmp(firstId, last) > 0
      -- An empty stream is looked at too: trimmed to 0 entries (XTRIM MAXLEN 0) or all deleted, it has
      -- no first entry to be behind of, and what went unread was counted only once something was
      -- added again, if ever (outside review AK).
      local verify = resync or (not behind and (firstId == nil or (from ~= '' and cmp(firstId, from) > 0)))
      -- The group's true position, when this check computes it.
      local pos
      if behind or verify then
        local info = redis.call('XINFO', 'STREAM', key)
        local s = {}
        for j = 1, #info, 2 do s[info[j]] = info[j + 1] end
        -- Tombstones after the position are fine when the last deletion was a
        -- stream.remove(): its entries were counted as read when it reported
        -- them (see removeEntries). One made outside the library makes the
        -- count unknown.
        local md = s['max-deleted-entry-id']
        local ours = dkey ~= nil and redis.call('GET', dkey) == md
        local added = tonumber(s['entries-added'])
        if behind then
          if ours or cmp(md, firstId) < 0 then pos = added - tonumber(s['length']) else unknown = 1 end
        elseif added > read or resync then
          if s['last-generated-id'] == last then
            pos = added
          elseif not ours and cmp(md, last) > 0 then
            unknown = 1
          else
            local n = #redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', cap + 1)
            if n <= cap then pos = added - n else verified = 0 end
          end
        end
        if resync then
          if pos == nil and not behind then verified = 0 end
          -- Before the first entry with nothing ever removed (pos 0): a group that has not read it yet,
          -- not one that lost entries (a resync after any reconnect said "how many is unknown").
          if behind and (pos == nil or pos > 0) then unknown = 1 end
          if pos and pos ~= read then redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', pos) end
        elseif pos and pos > read then
          skipped = pos - read
          redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', pos)
        end
      end
      -- The group's counter as this check leaves it, kept when it is known (see positionsKey).
      local now
      if pos and (resync or pos > read) then now = pos elseif not resync and read >= 0 then now = read end
      if now then
        local v = last .. ' ' .. string.format('%d', now)
        -- Best effort: at maxmemory Redis refuses it when the check wrote nothing else, and the
        -- check failed (its counts stand without it; outside review AN).
        if pkey and v ~= kept then redis.pcall('HSET', pkey, group, v) end
      end
      local pttl = redis.call('PTTL', key)
      -- The remove() keys and the positions follow a sliding TTL that adds extended since.
      if pkey and pttl > 0 and redis.call('EXISTS', dkey, rkey, pkey) > 0 then follow(pttl, ${REMOVAL_KEYS_FLOOR_MS}, {dkey, rkey, pkey}) end
      local tail = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
      out[i] = {'ok', skipped, last, verified, unknown, removed, type(lag) == 'number' and lag or -1, type(read0) == 'number' and read0 or -1, firstId or '', pending, pttl, tail[1] and tail[1][1] or ''}
    end
  end
end
return out`,
);

/**
 * `stream.remove()`: deletes entries so that no loss hides behind them.
 * Every group of the stream (a sink's, whether or not its registry entry
 * is still there) that had not read a deleted entry yet
 * gets it counted as removed before it read it (reported lost by its next
 * check), and counted as read in the group's entries-read, so that the
 * trim check never counts it again as jumped. The stream's
 * max-deleted-entry-id is recorded: while it is still ours, the trim check
 * knows every tombstone is accounted for. Entries a group read and has
 * pending are found gone by the claim and hold scripts instead. Both keys
 * expire with a TTL stream, `REMOVAL_KEYS_FLOOR_MS` at least (`checkTrimmed`
 * keeps them following a sliding one while a sink reads it).
 * Before deleting, it drops the stream's dedup hashes when they were written
 * for an earlier life of the stream (`DEDUP_DROP_STALE`): its `XDEL` would
 * move max-deleted-entry-id past their mark and make them pass for this
 * life's, so that a retry resolved to a gone entry's ID, nothing added.
 * KEYS: stream, last-removal key, removed counts, sink registry (not read
 * any more: every group is), then the current and the previous dedup
 * hashes (`dedupKeys`). ARGV: ids.
 * Returns how many entries were deleted.
 */
export const removeEntries = new Script(
  'removeEntries',
  `${CMP}
${FOLLOW}
local key = KEYS[1]
${DEDUP_DROP_STALE}
local t = redis.call('TYPE', key)
t = t['ok'] or t
if t == 'none' then return 0 end
local lasts, reads, counted = {}, {}, {}
if t == 'stream' then
  dropStaleDedup(KEYS[5], KEYS[6])
  -- Every group, not only the registry's sinks: a sliding-TTL stream's registry expires while no
  -- instance sweeps though its groups stay, and a removal counted for no sink was lost unsaid when
  -- the sink came back (the tombstones passed for accounted for: outside review AK).
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
    lasts[f['name']], reads[f['name']], counted[f['name']] = f['last-delivered-id'], f['entries-read'], 0
  end
end
local n = 0
for i = 1, #ARGV do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    n = n + 1
    for name, last in pairs(lasts) do
      if cmp(ARGV[i], last) > 0 then
        redis.call('HINCRBY', KEYS[3], name, 1)
        counted[name] = counted[name] + 1
      end
    end
  end
end
-- A removed entry counts as read by the groups it is reported to, so a
-- later trim check never counts it a second time as jumped.
for name, k in pairs(counted) do
  if k > 0 and type(reads[name]) == 'number' then
    redis.call('XGROUP', 'SETID', KEYS[1], name, lasts[name], 'ENTRIESREAD', reads[name] + k)
  end
end
if n > 0 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for j = 1, #info, 2 do
    if info[j] == 'max-deleted-entry-id' then redis.call('SET', KEYS[2], info[j + 1]) end
  end
  -- Both expire with a TTL stream (a minute at least), or they would outlive it for ever.
  follow(redis.call('PTTL', KEYS[1]), ${REMOVAL_KEYS_FLOOR_MS}, {KEYS[2], KEYS[3]})
end
return n`,
);

/**
 * `stream.destroy()`: deletes the stream and the library's keys for it, and
 * leaves each sink of the registry with a group a short-lived obituary with
 * what the deletion took from it (its unread events and every pending one,
 * including those being handled right now), for a live instance to report
 * as lost. A sink with instances still among its consumers of the stream
 * gets one with 0 too, so that an instance that finds the stream gone knows
 * it was destroyed, not expired, and does not fall back to an estimate.
 * Nothing else of the stream survives it.
 * KEYS: stream, then every key to delete (KEYS[4]: the removed counts, see
 * `removeEntries`), then one obituary per sink, then each sink's consumers
 * key (among those deleted too).
 * ARGV: number of keys to delete (after the stream), obituary lifetime ms, sink names...
 */
export const destroyStream = new Script(
  'destroyStream',
  `local key, n, ttl = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local sinks = #ARGV - 2
local counts = {}
local t = redis.call('TYPE', key)
t = t['ok'] or t
if t == 'stream' then
  local byName = {}
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local f = {}
    for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
    byName[f['name']] = f
  end
  for i = 3, #ARGV do
    local f = byName[ARGV[i]]
    if f then
      local unread = f['lag']
      if type(unread) ~= 'number' then unread = #redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+') end
      -- With those remove() deleted before the sink read them and its trim check took them (the
      -- removed counts, KEYS[4], deleted below): not in the lag, which counts them as read.
      local removed = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
      local count = unread + removed + tonumber(redis.call('XPENDING', key, ARGV[i])[1])
      -- 0 only where an instance may be live to read it (still in the sink's consumers of this stream).
      if count > 0 or redis.call('ZCARD', KEYS[n + 1 + sinks + i - 2]) > 0 then counts[i - 2] = count end
    end
  end
end
redis.call('DEL', unpack(KEYS, 1, n + 1))
for i, count in pairs(counts) do
  redis.call('SET', KEYS[n + 1 + i], count, 'PX', ttl)
end
return 1`,
);

/**
 * Takes a sink's obituary (see `destroyStream`). KEYS: obituary. Returns the
 * count (0 or more) for the one instance that takes it, -2 for the others
 * (taken: the loss is reported, and their buffered events were in its count,
 * being pending), -1 when there is none (the stream expired, or the
 * obituary's 10 minutes are over). The mark keeps the obituary's lifetime.
 */
export const takeObituary = new Script(
  'takeObituary',
  `local n = redis.call('GET', KEYS[1])
if not n then return -1 end
if n == 'taken' then return -2 end
redis.call('SET', KEYS[1], 'taken', 'KEEPTTL')
return tonumber(n)`,
);

/** What `takeObituary` returns when there is no obituary: the stream was not destroyed (it expired). */
export const NO_OBITUARY = -1;
/** What `takeObituary` returns to the instances that did not take it. */
export const OBITUARY_TAKEN = -2;
