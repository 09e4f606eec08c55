/**
 * The scripts behind `stream.add`: the merged form of adds, and trimming
 * under 'interest' retention.
 */
import { DEDUP_EXPIRY, DEDUP_LOOKUP, DEDUP_RECORD, DEDUP_STATE } from './dedupLua.js';
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC } from './keys.js';
import { CMP } from './lua.js';
import { Script } from './script.js';

/**
 * Adds events to one stream: the merged form of `stream.add` (see
 * `Mergeable` in batcher.ts), one event or many, then the stream's TTL:
 * sliding (every add) or absolute (only when no expiry is set), when
 * anything was added. `pcall` so that an error stops the batch with the
 * events before it added and reported, instead of failing them all.
 * KEYS: stream, then when some event has a dedupId the current and the
 * previous dedup hashes (`dedupKeys`): only then, as a script with
 * several keys is refused (TRYAGAIN) while its slot migrates and some of
 * them are not on the node yet.
 * ARGV: maxLen ('' none), NOMKSTREAM ('1' or ''), ttl ms ('' none),
 * 'sliding' or 'absolute', dedup window ms, then the events in one of five
 * layouts (`packAdds` in add.ts): '1', the name they all share, then a
 * payload per event; '2', then name and payload per event (no topics); '3',
 * then name, payload and topic ('' none) per event; '4' (some event has
 * headers or a dedupId), then per event name, payload, topic, dedupId ('' none),
 * the number of headers and their `h.<name>`, value pairs; '5', the same as
 * columns (see `EXTRAS_LOOP`). Fewer arguments
 * per event cost the server less: 12% fewer instructions per event with one
 * than with three (callgrind, BENCHMARKS.md), so events without headers or
 * dedupId never pay for layout 4.
 * Returns {ids, error or nil}: the IDs of the events added, joined by ','
 * ('-' where NOMKSTREAM found no key). After an error (layouts 1-3: the
 * events up to it) the events its dedupId answers still get their ID, '!'
 * the others (not run: the error is theirs). One string, not an array: the client
 * decodes one reply instead of one per event (about 0.1 us less CPU per
 * event in the library's publish loop with node-redis) and the server
 * writes one (2% fewer instructions per event; BENCHMARKS.md, fourth round).
 * With 'interest' retention (`addEventsInterest`) the XADDs do not trim:
 * the call trims once, after its events, what every consumer group is done
 * with (see INTEREST_TRIM).
 *
 * Dedup (SEMANTICS.md section 8), decided here, in the step of the XADD: an
 * event whose dedupId is recorded with a window that has not ended (the
 * recorded entry ID's millisecond + the window, against the server's clock)
 * is not added and gets the recorded ID; any other is added and recorded, so
 * a second add of one dedupId in the same call gets the first's ID. Records
 * live in two hashes dedupId -> entry ID (`dedupKeys`): the call looks its
 * dedupIds up in the current one (one HMGET, which also reads when that hash
 * began), then those it did not find in the previous one (a second HMGET,
 * only while that exists), and writes the records of the events it added in
 * one HSET. No per-record expiry to write (the sorted set of window ends
 * this replaced cost a ZADD per event, more than the HSET): a call that
 * finds the current hash a window old renames it to the previous one, whose
 * own records have all ended by then (UNLINKed first, so freed off the main
 * thread). Server time per event that dedups, 256 events per call
 * (callgrind, instructions in EVALSHA): 1.6x an add without dedupId, was
 * 2.2x with the sorted set; `npm run bench -- --cases dedup` 0.57-0.69 of
 * publish without, was 0.45-0.59. Windows are those of the hashes (the
 * largest any add recorded with, kept in them) or the caller's when larger,
 * so that adds with a shorter window never cut records of a longer one
 * short (dedupLua.ts, `SPAN_FIELD`). Both keys expire a window after the last
 * record written (never sooner than they were to: `GT`), or with the stream when it has a fixed TTL of ours and
 * would expire sooner (its expiry time then); `destroy()` deletes them. They
 * can still outlive the stream: a sliding TTL is extended by later adds and
 * not the keys, a Go producer may have set the TTL, Go's `Destroy` deletes
 * the stream and not them. So a call that finds the stream they were written
 * for gone (maybe created again since) drops them first, and a stream
 * created again never answers with IDs of the old one (dedupLua.ts, `STALE`:
 * one `XRANGE ... COUNT 1` per call while they exist, whatever the TTL).
 */
function addScript(name: string, interest: boolean): Script {
  // Trimming per XADD ('limits'), or once per call ('interest').
  const trimEach = interest ? 'false' : "maxLen ~= ''";
  const trimAfter = interest ? "if added and maxLen ~= '' then pcall(trimInterest, key, tonumber(maxLen)) end\n" : '';
  return new Script(
    name,
    // One literal XADD per shape, not a table unpacked per event: 8% less
    // server time per event (measured with INFO commandstats).
    `${interest ? `${CMP}\n${INTEREST_TRIM}\n` : ''}local key, maxLen = KEYS[1], ARGV[1]
local nomk, trim = ARGV[2] == '1', ${trimEach}
local ids, n, added, err = {}, 0, false, false
local step = tonumber(ARGV[6])
${DEDUP_STATE}
if step >= 4 then
${EXTRAS_LOOP}
else
local shared = ARGV[7]
local name, payload, topic = shared, nil, ''
for i = step == 1 and 8 or 7, #ARGV, step do
  if step == 1 then
    payload = ARGV[i]
  elseif step == 2 then
    name, payload = ARGV[i], ARGV[i + 1]
  else
    name, payload, topic = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  end
  local r
${LITERAL_XADD}
  if type(r) == 'table' and r.err then
    err = r.err
    break
  end
  n = n + 1
  ids[n] = r or '-'
  if r then added = true end
end
end
${trimAfter}if added and ARGV[3] ~= '' then
  if ARGV[4] == 'sliding' then redis.call('PEXPIRE', key, ARGV[3]) else redis.call('PEXPIRE', key, ARGV[3], 'NX') end
end
${DEDUP_EXPIRY}
return {table.concat(ids, ','), err}`,
  );
}

/**
 * One literal XADD per shape of event (topic or not, trimming, NOMKSTREAM)
 * of `name`, `payload` and `topic` into `r`: cheaper for the server than a
 * table unpacked per event (see `addScript`). Expects `key`, `maxLen`,
 * `trim` and `nomk` in scope.
 */
const LITERAL_XADD = `  if topic == '' then
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
  end`;

/**
 * Layouts 4 and 5 of the add script: events with headers or a dedupId (see
 * `addScript`). Expects `key`, `nomk`, `trim`, `maxLen`, `ids`, `n`,
 * `added`, `err` and `deduped` in scope.
 *
 * Layout 4, per event: name, payload, topic, dedupId, number of headers,
 * their field/value pairs. Layout 5 (columns: what the events of a call
 * share is sent once; `packAdds` picks it when every event has the same
 * header names, and topics on all or none): the shared name ('' : a name
 * per event), '1' when each event has a topic, '1' when each has a dedupId
 * ('' : none), the number of header fields and their names, then per event
 * [name], payload, [topic], [dedupId], header values. Fewer arguments cost
 * the client (encoding) and the server (parsing) less per event: trace
 * context on every event is one more argument, not six.
 */
const EXTRAS_LOOP = `${DEDUP_LOOKUP}
-- A literal XADD, for events without headers.
local function xadd(name, payload, topic)
  local r
${LITERAL_XADD}
  return r
end
-- XADD of args (of name, payload and topic without args), or the ID dedup
-- found. After an error nothing more is added, but a dedupId a record (or an
-- event of this call) answers still resolves: its event is stored ('!' for
-- the others: not run). A retry merged behind a refused add (OOM) was
-- rejected as not stored (outside review AM).
local function addOne(dedup, args, name, payload, topic)
  local r
  if dedup ~= '' then r = known[dedup] end
  if not r then
    if err then
      r = '!'
    else
      if args then r = redis.pcall(unpack(args)) else r = xadd(name, payload, topic) end
      if type(r) == 'table' and r.err then
        err = r.err
        r = '!'
      elseif r then
        added = true
        if dedup ~= '' then
          known[dedup] = r
          fresh[nf + 1] = dedup
          fresh[nf + 2] = r
          nf = nf + 2
        end
      end
    end
  end
  n = n + 1
  ids[n] = r or '-'
end
-- The head of every XADD of the call.
local base = {'XADD', key}
if nomk then base[#base + 1] = 'NOMKSTREAM' end
if trim then
  base[#base + 1] = 'MAXLEN'
  base[#base + 1] = '~'
  base[#base + 1] = maxLen
end
base[#base + 1] = '*'
base[#base + 1] = '${FIELD_NAME}'
local iName = #base + 1
base[iName] = ''
base[iName + 1] = '${FIELD_PAYLOAD}'
local iPayload = iName + 2
base[iPayload] = ''
if step == 4 then
  local dedups, nd, i = {}, 0, 7
  while i <= #ARGV do
    if ARGV[i + 3] ~= '' then
      nd = nd + 1
      dedups[nd] = ARGV[i + 3]
    end
    i = i + 5 + 2 * tonumber(ARGV[i + 4])
  end
  lookup(dedups, nd)
  i = 7
  while i <= #ARGV do
    local args = {}
    for j = 1, iPayload do args[j] = base[j] end
    args[iName] = ARGV[i]
    args[iPayload] = ARGV[i + 1]
    if ARGV[i + 2] ~= '' then
      args[iPayload + 1] = '${FIELD_TOPIC}'
      args[iPayload + 2] = ARGV[i + 2]
    end
    local dedup, first = ARGV[i + 3], i + 5
    i = first + 2 * tonumber(ARGV[i + 4])
    for j = first, i - 1 do args[#args + 1] = ARGV[j] end
    addOne(dedup, args)
  end
else
  -- One table for the whole call: each event only changes its slots.
  local nameCol, topicCol, dedupCol, k = ARGV[7] == '', ARGV[8] == '1', ARGV[9] == '1', tonumber(ARGV[10])
  local args = base
  args[iName] = ARGV[7]
  local iTopic, iHeaders = 0, iPayload + 1
  if topicCol then
    args[iPayload + 1] = '${FIELD_TOPIC}'
    iTopic = iPayload + 2
    iHeaders = iPayload + 3
  end
  if topicCol then args[iTopic] = '' end
  for j = 1, k do
    args[iHeaders + 2 * (j - 1)] = ARGV[10 + j]
    args[iHeaders + 2 * j - 1] = ''
  end
  local i, dedup = 11 + k, ''
  if dedupCol then
    -- Each event's dedupId sits at the same offset of its columns.
    local at = (nameCol and 1 or 0) + 1 + (topicCol and 1 or 0)
    local stride, dedups, nd = at + 1 + k, {}, 0
    for j = i + at, #ARGV, stride do
      if ARGV[j] ~= '' then
        nd = nd + 1
        dedups[nd] = ARGV[j]
      end
    end
    lookup(dedups, nd)
  end
  local last = #ARGV
  if k == 0 then
    -- No headers (dedupIds only): literal XADDs inline, nothing per event
    -- but locals (a function call and a table per event cost the server
    -- more than the XADD's own overhead).
    local name, payload, topic = args[iName], nil, ''
    while i <= last do
      if nameCol then
        name = ARGV[i]
        i = i + 1
      end
      payload = ARGV[i]
      i = i + 1
      if topicCol then
        topic = ARGV[i]
        i = i + 1
      end
      if dedupCol then
        dedup = ARGV[i]
        i = i + 1
      end
      local r = dedup ~= '' and known[dedup]
      -- After an error only what dedup answers (see addOne).
      if not r and err then
        r = '!'
      elseif not r then
${LITERAL_XADD}
        if type(r) == 'table' and r.err then
          err = r.err
          r = '!'
        elseif r then
          added = true
          if dedup ~= '' then
            known[dedup] = r
            fresh[nf + 1] = dedup
            fresh[nf + 2] = r
            nf = nf + 2
          end
        end
      end
      n = n + 1
      ids[n] = r or '-'
    end
  else
    while i <= last do
      if nameCol then
        args[iName] = ARGV[i]
        i = i + 1
      end
      args[iPayload] = ARGV[i]
      i = i + 1
      if topicCol then
        args[iTopic] = ARGV[i]
        i = i + 1
      end
      if dedupCol then
        dedup = ARGV[i]
        i = i + 1
      end
      for j = 1, k do
        args[iHeaders + 2 * j - 1] = ARGV[i]
        i = i + 1
      end
      addOne(dedup, args)
    end
  end
end
${DEDUP_RECORD}`;

/** Entries past maxLen before 'interest' trimming looks at the groups: a node of the stream (stream-node-max-entries). */
const TRIM_SLACK = 100;

/**
 * Trimming under 'interest' retention (SEMANTICS section 8): nothing at or
 * after the trim point is removed, the lowest over every consumer group of
 * its oldest pending entry, or else the entry after its last-delivered ID
 * (so unread entries stay too). Readers are not counted. Beyond that,
 * `maxLen` applies as with 'limits': of the `excess` oldest entries that
 * `MAXLEN maxLen` would remove, it removes those before the point.
 *
 * Cost, per call: `XLEN`; once the stream is {@link TRIM_SLACK} entries past
 * maxLen (as `MAXLEN ~` waits for a whole node), `XINFO GROUPS`, `XPENDING`
 * of each group with pending entries, and an `XRANGE` of the entries before
 * the point, at most `excess`: exactly those the trim then removes (exact
 * trimming, so none is copied twice). A sink far behind leaves nothing
 * before the point: that `XRANGE` is empty. The lag `XINFO GROUPS` reports
 * is not used: Redis does not know it for groups created without
 * ENTRIESREAD (Go Pulse's, raw `XGROUP CREATE`).
 * No group: trimming as 'limits'. Redis 8.2's `XADD ... ACKED` would not
 * keep unread entries, and our servers run 7.0: computed here. Called
 * through pcall: a failed trim must not lose the IDs of the events added.
 */
const INTEREST_TRIM = `local function inc(s)
  local i = #s
  while i > 0 and string.sub(s, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #s) end
  return string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) + 1) .. string.rep('0', #s - i)
end
local function after(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq == '18446744073709551615' then return inc(ms) .. '-0' end
  return ms .. '-' .. inc(seq)
end
local function trimInterest(key, maxLen)
  local excess = redis.call('XLEN', key) - maxLen
  if excess < ${TRIM_SLACK} then return end
  local groups = redis.call('XINFO', 'GROUPS', key)
  local point
  for _, g in ipairs(groups) do
    local f = {}
    for j = 1, #g, 2 do f[g[j]] = g[j + 1] end
    local from
    if tonumber(f['pending']) > 0 then
      from = redis.call('XPENDING', key, f['name'])[2]
    else
      from = after(f['last-delivered-id'])
    end
    if point == nil or cmp(from, point) < 0 then point = from end
  end
  if point == nil then
    redis.call('XTRIM', key, 'MAXLEN', '~', maxLen)
    return
  end
  local before = #redis.call('XRANGE', key, '-', '(' .. point, 'COUNT', excess)
  if before >= excess then
    redis.call('XTRIM', key, 'MAXLEN', maxLen)
  elseif before > 0 then
    redis.call('XTRIM', key, 'MINID', point)
  end
end`;

export const addEvents = addScript('addEvents', false);
/** `addEvents` for streams with 'interest' retention: same arguments and reply. */
export const addEventsInterest = addScript('addEventsInterest', true);
