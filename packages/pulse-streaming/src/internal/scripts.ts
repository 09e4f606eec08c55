/**
 * Server-side steps that must be atomic. Every key a script touches is in
 * KEYS and shares the stream's hash slot (the dead-letter stream excepted:
 * `claim` only writes it when the caller says both live on one node).
 */
import { DEAD_LETTER_LUA, MAX_DELIVERIES_REASON } from './deadLetterMove.js';
import { CMP, NOW } from './lua.js';
import { Script } from './script.js';
import { NACKED_IDLE_MS } from './sinkDue.js';

/**
 * Sets a new group's entries-read counter where it can be known exactly, so
 * that trimming before the group's first read is counted (see readGroup):
 * at the stream's end, everything added so far counts as read; at a start
 * before the first entry (0, or a Date or an ID before it), everything no
 * longer in the stream does: trimmed or deleted before the group existed,
 * it was never the group's (as a reader's start, readerScripts.ts). Left
 * unset, the first trim check resyncs it and, the group being behind the
 * first entry, says events may be lost though none were. Expects \`key\`,
 * \`group\`, \`start\` and \`atEnd\` in scope.
 */
const SET_ENTRIES_READ = `do
  local info = redis.call('XINFO', 'STREAM', key)
  local s = {}
  for j = 1, #info, 2 do s[info[j]] = info[j + 1] end
  local added, len = tonumber(s['entries-added']), tonumber(s['length'])
  local n
  if len == 0 then
    n = added
  elseif atEnd then
    if s['last-entry'] and s['last-entry'][1] == s['last-generated-id'] then n = added end
  elseif cmp(start, s['first-entry'][1]) < 0 then
    n = added - len
  end
  if n then redis.call('XGROUP', 'SETID', key, group, start, 'ENTRIESREAD', n) end
end`;

/**
 * Bookkeeping keys expire with their stream: `follow(pttl, floor, keys)`
 * gives each existing key the stream's remaining time to live `pttl` (at
 * least `floor` ms, so that a keep-alive entry never lapses between two
 * keep-alives of a short sliding TTL), never shortening an expiry another
 * sink set (GT); none when the stream has none (-1).
 */
export const FOLLOW = `local function follow(pttl, floor, keys)
  for _, k in ipairs(keys) do
    if pttl > 0 then
      local ms = math.max(pttl, floor)
      if redis.call('PTTL', k) == -1 then redis.call('PEXPIRE', k, ms) else redis.call('PEXPIRE', k, ms, 'GT') end
    elseif pttl == -1 then
      redis.call('PERSIST', k)
    end
  end
end`;

/**
 * The delays set of a sink (nacks delayed past the grace period, holds of
 * events deleted while handled) is only read for entries not yet due.
 * `expireDelays(key, stream)`: on a stream with a time to live it expires at
 * its last due time, never sooner, so it never outlives what it delays nor
 * the stream by more than that; on a stream without one it has none either:
 * a key with a time to live is what a `volatile-*` maxmemory policy evicts
 * (the default of managed Redis services), and an evicted set made every
 * delayed event due at once (a retry backoff turned into a retry every claim:
 * outside review S). Claims remove due entries, acks remove those of events
 * deleted while handled (heldGone.ts), Redis deletes the set once empty, and
 * the last instance to leave deletes it.
 */
export const EXPIRE_DELAYS = `local function expireDelays(k, stream)
  if redis.call('PTTL', stream) == -1 then
    redis.call('PERSIST', k)
    return
  end
  local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')[2]
  if last then redis.call('PEXPIREAT', k, string.format('%d', tonumber(last) + 1)) end
end`;

/**
 * Creates the group (and the stream key) unless it exists, records the sink,
 * and registers the consumer; the bookkeeping keys expire with the stream.
 * For 'newest' the start is the last entry's ID, read atomically with the
 * creation. Returns 1 when the group was created.
 * KEYS: stream, sink registry, consumers (the two left to the caller as the slot migrates: see
 * migratingWrites.ts). ARGV: group, start ('$newest' or an ID), ttlMs ('' none), consumer.
 */
export const createGroup = new Script(
  'createGroup',
  `${CMP}
${FOLLOW}
local key, group = KEYS[1], ARGV[1]
local existed = redis.call('EXISTS', KEYS[1])
local start = ARGV[2]
local atEnd = start == '$newest'
if atEnd then
  start = '0'
  if existed == 1 then
    local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
    if #last > 0 then start = last[1][1] end
  end
end
local created = 1
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], start, 'MKSTREAM')
if not ok then
  if string.find(tostring(err.err or err), 'BUSYGROUP') then created = 0 else return redis.error_reply(err.err or tostring(err)) end
end
if created == 1 then ${SET_ENTRIES_READ} end
if existed == 0 and ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[1]) end
-- Visible in XINFO CONSUMERS before its first delivery (an empty XREADGROUP does not create it).
redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[4])
${NOW}
if KEYS[3] then redis.call('ZADD', KEYS[3], now, ARGV[4]) end
follow(redis.call('PTTL', KEYS[1]), 0, {KEYS[2], KEYS[3]})
return created`,
);

/**
 * Claims events idle for more than the grace period, with their delivery
 * counts; dead-letters those delivered maxDeliveries times; acks and reports
 * entries deleted while pending.
 * Events nacked with a delay wait in the delays set until their due time:
 * skipped until then, whoever owns them.
 * Idle means idle for minIdle (this instance's grace period), or for the
 * longest grace period of the live instances that have events pending
 * there (ARGV pairs, given only for those with a longer one): a
 * short-grace instance never takes what a long-grace one still holds.
 * A `noAck` instance (ARGV[10] '1') claims only events of instances not
 * live, and acks them as it claims them: at most once, as its reads are;
 * the events of live ack-mode instances are left to those.
 * KEYS: stream, dead-letter stream (same as stream when dead letters are moved by the client), delays
 * (left out when missing as the slot migrates: see migratingWrites.ts).
 * ARGV: group, consumer, minIdle, count, maxDeliveries (0: none), inline ('1': move here; '2': move
 *       here, but our own events not nacked to the client: this instance holds some of the stream's),
 *       sink name, stream name, claim limit (0: only dead letters, for an instance with no room),
 *       noAck ('1' or '0'), k, then k pairs (live instance, its grace period when longer than
 *       minIdle), then with noAck the live instances.
 * Returns { id, deliveries, id, deliveries... } of those claimed (in ID order; their fields are
 * read by the client), { lost ids }, { dead-lettered ids }, { {id, deliveries} to move by the
 * client }, ms until the first delayed event skipped is due (-1: none).
 */
export const claim = new Script(
  'claim',
  `${EXPIRE_DELAYS}
${DEAD_LETTER_LUA}
local delayed = KEYS[3] ~= nil and redis.call('ZCARD', KEYS[3]) > 0
local count = tonumber(ARGV[4])
${NOW}
if delayed then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  -- A set an older version wrote (with an expiry on a stream that has none, or none) gets this one's.
  expireDelays(KEYS[3], KEYS[1])
  -- Delayed events would take the places of due ones in the scan.
  count = count + redis.call('ZCARD', KEYS[3])
end
local noAck, live, graces, k = ARGV[10] == '1', {}, {}, tonumber(ARGV[11])
for j = 12, 11 + 2 * k, 2 do graces[ARGV[j]] = tonumber(ARGV[j + 1]) end
if noAck then for j = 12 + 2 * k, #ARGV do live[ARGV[j]] = true end end
local minIdle = tonumber(ARGV[3])
if k > 0 then
  -- A live instance with a longer grace period holds events here: it refreshes them on its own schedule.
  local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
  if type(summary[4]) == 'table' then
    for _, c in ipairs(summary[4]) do
      local g = graces[c[1]]
      if g and g > minIdle then minIdle = g end
    end
  end
end
local pend = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', minIdle, '-', '+', count)
local maxDel = tonumber(ARGV[5])
local ids, counts, lost, dead, toMove = {}, {}, {}, {}, {}
local nextDue = -1
for _, p in ipairs(pend) do
  local id, n = p[1], tonumber(p[4])
  local due = delayed and redis.call('ZSCORE', KEYS[3], id)
  if due then
    -- nacked with a delay that has not run out yet
    due = math.max(0, tonumber(due) - now)
    if nextDue < 0 or due < nextDue then nextDue = due end
  elseif noAck and live[p[2]] then
    -- a live ack-mode instance's (nacked, or its hold lapsed): an ack-mode instance claims it, at least once
  elseif maxDel > 0 and n >= maxDel then
    -- Ours and not nacked (idle under the nack's) while this instance holds events of the stream
    -- (ARGV[6] '2'): it may hold this one, in a handler or a held buffer, its keep-alive late.
    -- Taken to the client, which moves it unless so (sinkClaims.ts).
    local held = ARGV[6] == '2' and p[2] == ARGV[2] and tonumber(p[3]) < ${NACKED_IDLE_MS}
    local e = ARGV[6] ~= '0' and not held and redis.call('XRANGE', KEYS[1], id, id)
    -- More fields than one call of a script takes: moved by the client, as on a cluster.
    if e and #e > 0 and not deadLetterFits(e[1][2]) then e = false end
    if e then
      if #e > 0 then
        addDeadLetter(KEYS[2], e[1][2], ARGV[8], ARGV[7], id, tostring(n), '${MAX_DELIVERIES_REASON}')
        dead[#dead + 1] = id
      else
        lost[#lost + 1] = id
      end
      redis.call('XACK', KEYS[1], ARGV[1], id)
    else
      -- Two steps by the client (a cluster, an entry too big, or one this instance may hold): take it first, so no other instance moves it too (kept
      -- ours while the client moves it, deadLetterMove.ts); JUSTID keeps the count, and if this
      -- instance dies another one retries after the grace period.
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], minIdle, id, 'JUSTID')
      toMove[#toMove + 1] = {id, n}
    end
  elseif #ids < tonumber(ARGV[9]) then
    ids[#ids + 1] = id
    counts[id] = n
  end
end
local out = {}
if #ids > 0 then
  -- JUSTID: the entries' fields travel outside Lua (the client reads them, see sinkClaims.ts): turned
  -- into Lua tables and back they cost more than the claim itself. JUSTID raises no delivery count:
  -- RETRYCOUNT sets it, once per count among those claimed (one, when a consumer's events are taken over).
  local byCount = {}
  for _, id in ipairs(ids) do
    local n = counts[id] + 1
    local list = byCount[n]
    if not list then list = {}; byCount[n] = list end
    list[#list + 1] = id
  end
  local got, acked = {}, {}
  for n, list in pairs(byCount) do
    list[#list + 1] = 'RETRYCOUNT'
    list[#list + 1] = n
    list[#list + 1] = 'JUSTID'
    -- Entries deleted while pending are not claimed (XCLAIM drops them from the pending list).
    for _, id in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], minIdle, unpack(list))) do got[id] = n end
  end
  for _, id in ipairs(ids) do
    local n = got[id]
    if n then
      out[#out + 1] = id
      out[#out + 1] = n
      if noAck then acked[#acked + 1] = id end
    else
      -- Only report it if it was really deleted, not claimed by someone else since XPENDING.
      if #redis.call('XRANGE', KEYS[1], id, id) == 0 then
        redis.call('XACK', KEYS[1], ARGV[1], id)
        lost[#lost + 1] = id
      end
    end
  end
  if #acked > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(acked)) end
end
return {out, lost, dead, toMove, string.format('%d', nextDue)}`,
);

/**
 * Sets the idle time of our own pending events: 0 for in-progress and for
 * events still buffered for a subscriber, past any grace period for a nack
 * (`NACKED_IDLE_MS`). Skips
 * events another consumer owns now. An entry trimmed or deleted meanwhile is
 * returned, so the caller can report it, and left pending (XCLAIM would
 * silently drop it from the pending list) unless ARGV[4] is '1': a nack
 * reports it, and acks it in the same step so that no claimer finds it
 * still pending and reports it a second time.
 * A nack's delay is not told to Redis as an idle time (grace - delay would
 * hold only for instances of the same grace period): its due time goes to
 * the sink's delays set, which `claim` consults. A nack without a delay
 * clears an earlier delay of the event.
 * An in-progress touch (keepGoneMs set) of an entry deleted meanwhile cannot
 * reset its idle time (XCLAIM would drop it): it goes to the delays set for
 * keepGoneMs instead, so that no claimer reports it lost while its handler
 * still works on it; the handler's ack or nack settles it, and if the
 * consumer dies the delay runs out and a claimer reports it. The delays set
 * of a stream with a time to live expires at its last due time (`EXPIRE_DELAYS`).
 * KEYS: stream, delays (left to the caller as the slot migrates: see migratingWrites.ts). ARGV: group,
 * consumer, idleMs (-1: only look), '1' for a nack (else ''), delay ms ('' none), keepGoneMs ('' none), ids...
 * Returns {gone, vanished, mine, counts}: our pending IDs no longer in the stream, IDs
 * pending for no one and not in the stream either (after a rollback of
 * Redis, events this consumer held whose entry the snapshot did not have;
 * else handled elsewhere and trimmed since: see sinkRollback.ts), those it set the idle time of,
 * and their delivery counts (a nack's: raised since the nacker's delivery, a claim of ours took
 * it back first, see nacks.ts).
 */
export const touch = new Script(
  'touch',
  `${EXPIRE_DELAYS}
local gone, vanished, mine, counts, delays = {}, {}, {}, {}, false
local due
if ARGV[5] ~= '' then
  ${NOW}
  due = now + tonumber(ARGV[5])
end
local keepUntil
if ARGV[6] ~= '' then
  ${NOW}
  keepUntil = now + tonumber(ARGV[6])
end
local d = KEYS[2]
for i = 7, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 0 then
    if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then vanished[#vanished + 1] = ARGV[i] end
  elseif p[1][2] == ARGV[2] then
    if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
      gone[#gone + 1] = ARGV[i]
      if ARGV[4] == '1' then
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
        if d then redis.call('ZREM', d, ARGV[i]) end
      elseif keepUntil and d then
        redis.call('ZADD', d, keepUntil, ARGV[i])
        delays = true
      end
    elseif ARGV[3] ~= '-1' then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
      mine[#mine + 1] = ARGV[i]
      counts[#counts + 1] = p[1][4]
      if d and due then
        redis.call('ZADD', d, due, ARGV[i])
        delays = true
      elseif d and ARGV[4] == '1' then
        redis.call('ZREM', d, ARGV[i])
      end
    end
  end
end
if delays then expireDelays(d, KEYS[1]) end
return {gone, vanished, mine, counts}`,
);

/**
 * Before a buffered event whose hold may have lapsed is handed out: is it
 * still ours? Ours and still in the stream: its idle time goes back to 0.
 * Ours but gone from the stream: returned as gone and left pending: the
 * caller reports (and acks) those still buffered, a subscriber that took
 * one meanwhile settles it (its nack reports it).
 * Not pending for us any more (claimed by another consumer,
 * dead-lettered, reported lost or acked elsewhere): returned as not ours,
 * never to be handed out by this consumer. Pending for no one and gone from
 * the stream: returned as vanished, for the caller to tell a rollback of
 * Redis (which took both the entry and its pending entry while this
 * consumer held it) from an entry handled elsewhere and trimmed since.
 * KEYS: stream. ARGV: group, consumer, ids... Returns {notOurs, gone, vanished}.
 */
export const reown = new Script(
  'reown',
  `local notOurs, gone, vanished = {}, {}, {}
-- A missing stream or group fails here (NOGROUP): the read path finds it
-- too and accounts for what went with it; the check waits and retries.
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 0 and #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
    vanished[#vanished + 1] = ARGV[i]
  elseif #p == 0 or p[1][2] ~= ARGV[2] then
    notOurs[#notOurs + 1] = ARGV[i]
  elseif #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
    gone[#gone + 1] = ARGV[i]
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', 0, 'JUSTID')
  end
end
return {notOurs, gone, vanished}`,
);

/**
 * Recreates a group lost to `NOGROUP` at `0` (duplicates possible), but
 * never resurrects a stream key that is gone. Registers the sink and the
 * consumer again as `createGroup` does (a `destroy()` deleted them), so that
 * a later `destroy()` finds every key.
 * With ARGV[3] '1' (a group found missing on a living key), the call that
 * creates it also takes, for the client to count (sinkRecreate.ts), what
 * went while it was missing: the old group's last kept position (dropped:
 * the new group's starts anew), the stream as it is now, and the delayed
 * nacks whose entries left the stream (no claim finds them in the new
 * group's pending list: they were dropped unseen when due); the delays set
 * is emptied. One call creates the group: they are counted once.
 * KEYS: stream, sink registry, consumers, positions, delays. ARGV: group, consumer, '1' to take them.
 * Returns {0} when the key is gone; {1, 0} when the group exists now and nothing was taken; else {1,
 * 1, kept position ('' none), entries-added, length, first entry ID ('' none), last-generated ID,
 * max-deleted ID, {delayed IDs gone}, other consumers registered}.
 */
export const recreateGroup = new Script(
  'recreateGroup',
  `${CMP}
${FOLLOW}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local key, group, start, atEnd = KEYS[1], ARGV[1], '0', false
local ok = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')
if ok then ${SET_ENTRIES_READ} end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[2])
${NOW}
redis.call('ZADD', KEYS[3], now, ARGV[2])
follow(redis.call('PTTL', KEYS[1]), 0, {KEYS[2], KEYS[3]})
if not ok or ARGV[3] ~= '1' then return {1, 0} end
local kept = redis.call('HGET', KEYS[4], group)
if kept then redis.call('HDEL', KEYS[4], group) end
local gone = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  if #redis.call('XRANGE', key, id, id) == 0 then gone[#gone + 1] = id end
end
-- The new group has none of them pending: those still in the stream come again from 0 (their delay
-- void), and an entry left here would read as a delayed nack gone at the next recreation, long after
-- it was handled.
redis.call('DEL', KEYS[5])
local info = redis.call('XINFO', 'STREAM', key)
local s = {}
for j = 1, #info, 2 do s[info[j]] = info[j + 1] end
local first = s['first-entry'] and s['first-entry'][1] or ''
return {1, 1, kept or '', s['entries-added'], s['length'], first, s['last-generated-id'], s['max-deleted-entry-id'], gone, redis.call('ZCARD', KEYS[3]) - 1}`,
);
