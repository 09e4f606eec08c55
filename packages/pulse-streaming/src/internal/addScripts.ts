/**
 * The scripts behind `stream.add`: the merged form of adds, and trimming
 * under 'interest' retention.
 */
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC } from './keys.js';
import { CMP } from './lua.js';
import { Script } from './script.js';

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
 * With 'interest' retention (`addEventsInterest`) the XADDs do not trim:
 * the call trims once, after its events, what every consumer group is done
 * with (see INTEREST_TRIM).
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
${trimAfter}if added and ARGV[3] ~= '' then
  if ARGV[4] == 'sliding' then redis.call('PEXPIRE', key, ARGV[3]) else redis.call('PEXPIRE', key, ARGV[3], 'NX') end
end
return {table.concat(ids, ','), err}`,
  );
}

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
