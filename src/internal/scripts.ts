/**
 * Server-side steps that must be atomic. Every key a script touches is in
 * KEYS and shares the stream's hash slot (the dead-letter stream excepted:
 * `claim` only writes it when the caller says both live on one node).
 */
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC } from './keys.js';
import { Script } from './script.js';

/** Compares two entry IDs as Redis does (no float rounding of 64-bit sequences). */
export const CMP = `local function cmp(a, b)
  local am, as = string.match(a, '^(%d+)-?(%d*)$')
  local bm, bs = string.match(b, '^(%d+)-?(%d*)$')
  if as == '' then as = '0' end
  if bs == '' then bs = '0' end
  if #am ~= #bm then return #am < #bm and -1 or 1 end
  if am ~= bm then return am < bm and -1 or 1 end
  if #as ~= #bs then return #as < #bs and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end`;

/**
 * Sets a new group's entries-read counter where it can be known exactly, so
 * that trimming before the group's first read is counted (see readGroup):
 * at the stream's end, everything added so far counts as read; at 0,
 * everything no longer in the stream does. Expects \`key\`, \`group\`, \`start\`
 * and \`atEnd\` in scope.
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
  elseif start == '0' or start == '0-0' then
    if cmp(s['max-deleted-entry-id'], s['first-entry'][1]) < 0 then n = added - len end
  end
  if n then redis.call('XGROUP', 'SETID', key, group, start, 'ENTRIESREAD', n) end
end`;

/** Redis server time in ms, so liveness never compares two hosts' clocks. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Adds events to one stream: the merged form of `stream.add` (see
 * `Mergeable` in batcher.ts), one event or many, then the stream's TTL:
 * sliding (every add) or absolute (only when no expiry is set), when
 * anything was added. `pcall` so that an error stops the batch with the
 * events before it added and reported, instead of failing them all.
 * KEYS: stream. ARGV: maxLen ('' none), NOMKSTREAM ('1' or ''), ttl ms
 * ('' none), 'sliding' or 'absolute', then the events in one of three
 * layouts (`packAdds` in stream.ts): '1', the name they all share, then a
 * payload per event; '2', then name and payload per event (no topics); '3',
 * then name, payload and topic ('' none) per event. Fewer arguments per
 * event cost the server less: 12% fewer instructions per event with one
 * than with three (callgrind, BENCHMARKS.md).
 * Returns {ids, error or nil}: the IDs of the events added, joined by ','
 * ('-' where NOMKSTREAM found no key). One string, not an array: the client
 * decodes one reply instead of one per event (about 0.1 us less CPU per
 * event in the library's publish loop with node-redis) and the server
 * writes one (2% fewer instructions per event; BENCHMARKS.md, fourth round).
 */
export const addEvents = new Script(
  'addEvents',
  // One literal XADD per shape, not a table unpacked per event: 8% less
  // server time per event (measured with INFO commandstats).
  `local key, maxLen = KEYS[1], ARGV[1]
local nomk, trim = ARGV[2] == '1', maxLen ~= ''
local ids, n, added, err = {}, 0, false, false
local step = tonumber(ARGV[5])
local shared = ARGV[6]
local name, payload, topic = shared, nil, ''
for i = step == 1 and 7 or 6, #ARGV, step do
  if step == 1 then
    payload = ARGV[i]
  elseif step == 2 then
    name, payload = ARGV[i], ARGV[i + 1]
  else
    name, payload, topic = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  end
  local r
  if topic == '' then
    if trim and nomk then
      r = redis.pcall('XADD', key, 'NOMKSTREAM', 'MAXLEN', '~', maxLen, '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload)
    elseif trim then
      r = redis.pcall('XADD', key, 'MAXLEN', '~', maxLen, '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload)
    elseif nomk then
      r = redis.pcall('XADD', key, 'NOMKSTREAM', '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload)
    else
      r = redis.pcall('XADD', key, '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload)
    end
  elseif trim and nomk then
    r = redis.pcall('XADD', key, 'NOMKSTREAM', 'MAXLEN', '~', maxLen, '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload, '${FIELD_TOPIC}', topic)
  elseif trim then
    r = redis.pcall('XADD', key, 'MAXLEN', '~', maxLen, '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload, '${FIELD_TOPIC}', topic)
  elseif nomk then
    r = redis.pcall('XADD', key, 'NOMKSTREAM', '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload, '${FIELD_TOPIC}', topic)
  else
    r = redis.pcall('XADD', key, '*', '${FIELD_NAME}', name, '${FIELD_PAYLOAD}', payload, '${FIELD_TOPIC}', topic)
  end
  if type(r) == 'table' and r.err then
    err = r.err
    break
  end
  n = n + 1
  ids[n] = r or '-'
  if r then added = true end
end
if added and ARGV[3] ~= '' then
  if ARGV[4] == 'sliding' then redis.call('PEXPIRE', key, ARGV[3]) else redis.call('PEXPIRE', key, ARGV[3], 'NX') end
end
return {table.concat(ids, ','), err}`,
);

/**
 * Creates the group (and the stream key) unless it exists, records the sink,
 * and registers the consumer. For 'newest' the start is the last entry's ID,
 * read atomically with the creation. Returns 1 when the group was created.
 * KEYS: stream, sink registry, consumers. ARGV: group, start ('$newest' or an ID), ttlMs ('' none), consumer.
 */
export const createGroup = new Script(
  'createGroup',
  `${CMP}
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
redis.call('SADD', KEYS[2], ARGV[1])
-- Visible in XINFO CONSUMERS before its first delivery (an empty XREADGROUP does not create it).
redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[4])
${NOW}
redis.call('ZADD', KEYS[3], now, ARGV[4])
return created`,
);

/** Keep-alive. KEYS: consumers. ARGV: consumer. */
export const keepAlive = new Script(
  'keepAlive',
  `${NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now`,
);

/**
 * Takes or renews the lease that lets one consumer at a time reclaim and clean up.
 * KEYS: lease. ARGV: consumer, ttlMs, release ('1' to give it up). Returns 1 when held.
 */
export const lease = new Script(
  'lease',
  `local holder = redis.call('GET', KEYS[1])
if ARGV[3] == '1' then
  if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 0
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`,
);

/**
 * Claims events idle for more than the grace period, with their delivery
 * counts; dead-letters those delivered maxDeliveries times; acks and reports
 * entries deleted while pending.
 * KEYS: stream, dead-letter stream (same as stream when dead letters are moved by the client).
 * ARGV: group, consumer, minIdle, count, maxDeliveries (0: none), inline ('1': move here),
 *       sink name, stream name, claim limit (0: only dead letters, for an instance with no room).
 * Returns { {id, fields, deliveries}... }, { lost ids }, { dead-lettered ids }, { {id, deliveries} to move by the client }.
 */
export const claim = new Script(
  'claim',
  `local pend = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
local maxDel = tonumber(ARGV[5])
local ids, counts, lost, dead, toMove = {}, {}, {}, {}, {}
for _, p in ipairs(pend) do
  local id, n = p[1], tonumber(p[4])
  if maxDel > 0 and n >= maxDel then
    if ARGV[6] == '1' then
      local e = redis.call('XRANGE', KEYS[1], id, id)
      if #e > 0 then
        local args = {'XADD', KEYS[2], '*'}
        for _, v in ipairs(e[1][2]) do args[#args + 1] = v end
        for _, v in ipairs({'source_stream', ARGV[8], 'source_sink', ARGV[7], 'source_id', id, 'deliveries', tostring(n), 'reason', 'max deliveries reached'}) do
          args[#args + 1] = v
        end
        redis.call(unpack(args))
        dead[#dead + 1] = id
      else
        lost[#lost + 1] = id
      end
      redis.call('XACK', KEYS[1], ARGV[1], id)
    else
      -- Two steps by the client (cluster): take it first, so no other instance moves it too;
      -- JUSTID keeps the count, and if this instance dies another one retries after the grace period.
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id, 'JUSTID')
      toMove[#toMove + 1] = {id, n}
    end
  elseif #ids < tonumber(ARGV[9]) then
    ids[#ids + 1] = id
    counts[id] = n
  end
end
local out = {}
if #ids > 0 then
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], unpack(ids))
  local got = {}
  for _, e in ipairs(claimed) do
    if type(e) == 'table' and e[2] then
      got[e[1]] = true
      out[#out + 1] = {e[1], e[2], counts[e[1]] + 1}
    end
  end
  for _, id in ipairs(ids) do
    if not got[id] then
      -- Only report it if it was really deleted, not claimed by someone else since XPENDING.
      if #redis.call('XRANGE', KEYS[1], id, id) == 0 then
        redis.call('XACK', KEYS[1], ARGV[1], id)
        lost[#lost + 1] = id
      end
    end
  end
end
return {out, lost, dead, toMove}`,
);

/**
 * Sets the idle time of our own pending events: 0 for in-progress and for
 * events still buffered for a subscriber, grace - delay for a nack. Skips
 * events another consumer owns now. An entry trimmed or deleted meanwhile is
 * returned, so the caller can report it, and left pending (XCLAIM would
 * silently drop it from the pending list) unless ARGV[4] is '1': a nack
 * reports it, and acks it in the same step so that no claimer finds it
 * still pending and reports it a second time.
 * KEYS: stream. ARGV: group, consumer, idleMs (-1: only look), '1' to ack
 * what is gone (else ''), ids... Returns the IDs no longer in the stream.
 */
export const touch = new Script(
  'touch',
  `local gone = {}
for i = 5, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
      gone[#gone + 1] = ARGV[i]
      if ARGV[4] == '1' then redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) end
    elseif ARGV[3] ~= '-1' then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    end
  end
end
return gone`,
);

const CONSUMER_FIELDS = `local name, pending, idle
  for i = 1, #info, 2 do
    local k = info[i]
    if k == 'name' then name = info[i + 1] elseif k == 'pending' then pending = tonumber(info[i + 1]) elseif k == 'idle' then idle = tonumber(info[i + 1]) end
  end`;

/**
 * Removes stale consumers, but only those that own no pending entry: their
 * entries are claimed first (after the grace period), then they go.
 * KEYS: stream, consumers. ARGV: group, self, staleMs. Returns removed names.
 */
export const removeStale = new Script(
  'removeStale',
  `${NOW}
local staleMs = tonumber(ARGV[3])
local ok, infos = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return {} end
local removed, inGroup = {}, {}
for _, info in ipairs(infos) do
  ${CONSUMER_FIELDS}
  inGroup[name] = true
  if name ~= ARGV[2] then
    local seen = redis.call('ZSCORE', KEYS[2], name)
    local stale
    if seen then stale = (now - tonumber(seen)) > staleMs else stale = idle > staleMs end
    if stale and pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
      redis.call('ZREM', KEYS[2], name)
      removed[#removed + 1] = name
    end
  end
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - staleMs)) do
  if not inGroup[name] then redis.call('ZREM', KEYS[2], name) end
end
return removed`,
);

/**
 * A consumer leaves a stream: it stops being live, gives up the lease, and
 * leaves the group if it owns no pending entry. With ARGV[3] = '1' (removeStream),
 * the group is destroyed when no consumer, no live instance (a fresh
 * keep-alive) and no pending entry is left.
 * KEYS: stream, consumers, lease, sink registry. ARGV: group, self, destroyIfLast, staleMs.
 * Returns 1 when the group was destroyed.
 */
export const leave = new Script(
  'leave',
  `redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
local ok, mine = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok then return 0 end
if #mine == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
if ARGV[3] ~= '1' then return 0 end
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(summary[1]) > 0 then return 0 end
if #redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1]) > 0 then return 0 end
${NOW}
if redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[4]), '+inf') > 0 then return 0 end
redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return 1`,
);

/**
 * Recreates a group lost to `NOGROUP` at `0` (nothing lost, duplicates
 * possible), but never resurrects a stream key that is gone.
 * KEYS: stream. ARGV: group. Returns 1 when the group exists now.
 */
export const recreateGroup = new Script(
  'recreateGroup',
  `${CMP}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local key, group, start, atEnd = KEYS[1], ARGV[1], '0', false
local ok = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')
if ok then ${SET_ENTRIES_READ} end
return 1`,
);

/**
 * Counts entries trimmed before the sink's group read them, which
 * `XREADGROUP` jumps over without a word, so they are reported as lost, and
 * fixes the group's `entries-read` counter so they are counted once. Exact
 * while entries are only trimmed from the front; with XDEL tombstones after
 * the group's position it counts nothing. Entries stay out of Lua where
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
 *
 * KEYS: streams. ARGV: group, most entries to count, then per key the ID to
 * verify from, '' not to verify, or 'r' to resync.
 * Returns per stream: {'ok', skipped, lastDeliveredId, verified (1 or 0), unknown (1 or 0)} | {'nogroup'} | {'nokey'} | {'wrongtype'}.
 */
export const checkTrimmed = new Script(
  'checkTrimmed',
  `${CMP}
local group, cap = ARGV[1], tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
  if not ok then
    local t = redis.call('TYPE', key)
    t = t['ok'] or t
    if t == 'none' then out[i] = {'nokey'} else out[i] = {'wrongtype'} end
  else
    local found, last, read = false, nil, nil
    for _, g in ipairs(groups) do
      local f = {}
      for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
      if f['name'] == group then
        found, last, read = true, f['last-delivered-id'], f['entries-read']
        break
      end
    end
    if not found then
      out[i] = {'nogroup'}
    else
      local skipped, verified, unknown = 0, 1, 0
      local from = ARGV[2 + i]
      local resync = from == 'r'
      if type(read) == 'number' or resync then
        read = tonumber(read) or -1
        local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
        local firstId = first[1] and first[1][1]
        local behind = firstId ~= nil and cmp(firstId, last) > 0
        local verify = resync or (not behind and from ~= '' and not (firstId ~= nil and cmp(firstId, from) <= 0))
        if behind or verify then
          local info = redis.call('XINFO', 'STREAM', key)
          local s = {}
          for j = 1, #info, 2 do s[info[j]] = info[j + 1] end
          local md = s['max-deleted-entry-id']
          local added = tonumber(s['entries-added'])
          local pos
          if behind then
            if cmp(md, firstId) < 0 then pos = added - tonumber(s['length']) end
          elseif cmp(md, last) <= 0 and (added > read or resync) then
            if s['last-generated-id'] == last then
              pos = added
            else
              local n = #redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', cap + 1)
              if n <= cap then pos = added - n else verified = 0 end
            end
          end
          if resync then
            if pos == nil and not behind then verified = 0 end
            if behind then unknown = 1 end
            if pos and pos ~= read then redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', pos) end
          elseif pos and pos > read then
            skipped = pos - read
            redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', pos)
          end
        end
      end
      out[i] = {'ok', skipped, last, verified, unknown}
    end
  end
end
return out`,
);

/**
 * Moves dead letters back into their source stream in one step: each is
 * added again (n, p, t) and deleted from the dead-letter stream.
 * KEYS: dead-letter stream, source stream. ARGV: maxLen (0: none), ids...
 * Returns the new IDs (false for an ID that was not found).
 */
export const replayDead = new Script(
  'replayDead',
  `local out = {}
for i = 2, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #e == 0 then
    out[#out + 1] = false
  else
    local f = e[1][2]
    local args = {'XADD', KEYS[2]}
    if tonumber(ARGV[1]) > 0 then
      args[#args + 1] = 'MAXLEN'
      args[#args + 1] = '~'
      args[#args + 1] = ARGV[1]
    end
    args[#args + 1] = '*'
    for j = 1, #f, 2 do
      if f[j] == 'n' or f[j] == 'p' or f[j] == 't' then
        args[#args + 1] = f[j]
        args[#args + 1] = f[j + 1]
      end
    end
    out[#out + 1] = redis.call(unpack(args))
    redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return out`,
);
