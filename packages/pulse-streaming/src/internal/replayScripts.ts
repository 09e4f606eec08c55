/**
 * Scripts that move dead letters back into their source stream (see
 * `replayDeadLetters`). On one Redis node a move is one script; on a cluster
 * the two streams may sit in different slots, so a move is four steps, each
 * atomic in one slot: claim the letter (dead-letter slot), add it unless it
 * was added already (source slot), delete it (dead-letter slot), forget that
 * it was added (source slot, a plain HDEL).
 */
import { LUA_CALL_MAX_ARGS, NOW } from './lua.js';
import { Script } from './script.js';

/**
 * Whether a letter with `pairs` event field pairs is too big for a script's
 * XADD (`XADD key MAXLEN ~ n *` and the fields: more than one call of a
 * script takes, LUA_CALL_MAX_ARGS). Such a letter (a foreign entry with
 * thousands of `h.*` fields, which Redis accepts) is moved by the client
 * instead (`moveBig` in replayMoves.ts): the scripts failed every replay of
 * its stream with "too many results to unpack" (outside review AI).
 */
export function tooBigForScript(pairs: number): boolean {
  return 6 + 2 * Math.max(pairs, 2) > LUA_CALL_MAX_ARGS;
}

/**
 * The fields of a dead letter that make the replayed event: name, payload,
 * topic and headers (`h.*`), not the dead-letter fields (`source_stream`...).
 * A letter with none of them (a raw producer's entry with fields of its own,
 * dead-lettered by a typed `process()`) goes back as the event the sink saw:
 * `n` '' and `p` ''; an XADD without fields is refused, and that one letter
 * made every replay of the stream fail (outside review AI). A letter with
 * some of them keeps exactly its own.
 * Expects `f` (a flat field/value list) in scope; sets `args`.
 */
const EVENT_FIELDS = `local copied = false
for j = 1, #f, 2 do
  local k = f[j]
  if k == 'n' or k == 'p' or k == 't' or string.sub(k, 1, 2) == 'h.' then
    args[#args + 1] = k
    args[#args + 1] = f[j + 1]
    copied = true
  end
end
if not copied then
  args[#args + 1] = 'n'
  args[#args + 1] = ''
  args[#args + 1] = 'p'
  args[#args + 1] = ''
end`;

/**
 * The XADD of a replayed event, trimmed as `stream.add` trims (MAXLEN ~).
 * Expects `key`, `maxLen` (a number, 0: none) and `args = {}` in scope.
 */
const XADD_HEAD = `args[1] = 'XADD'
args[2] = key
if maxLen > 0 then
  args[3] = 'MAXLEN'
  args[4] = '~'
  args[5] = tostring(maxLen)
end
args[#args + 1] = '*'`;

/**
 * The stream's TTL once something was added, exactly as `addEvents` applies
 * it: sliding (every add) or absolute (only when the key has no expiry).
 * Expects `key`, `ttl` ('' none) and `mode` in scope.
 */
const APPLY_TTL = `if ttl ~= '' then
  if mode == 'sliding' then redis.call('PEXPIRE', key, ttl) else redis.call('PEXPIRE', key, ttl, 'NX') end
end`;

/**
 * Moves dead letters back into their source stream in one step (one Redis
 * node, or both streams in one slot): each is added again and deleted from
 * the dead-letter stream; then the stream's TTL is applied as `stream.add`
 * applies it.
 * KEYS: dead-letter stream, source stream. ARGV: maxLen (0: none), ttl ms
 * ('' none), 'sliding' or 'absolute', ids...
 * Returns the new IDs (false for an ID that was not found, 'big' for a letter
 * whose XADD has more than LUA_CALL_MAX_ARGS arguments: it is left in place for
 * the client to move).
 */
export const replayDead = new Script(
  'replayDead',
  `local key, maxLen, ttl, mode = KEYS[2], tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out, added = {}, false
for i = 4, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #e == 0 then
    out[#out + 1] = false
  else
    local f, args = e[1][2], {}
    ${XADD_HEAD}
    ${EVENT_FIELDS}
    if #args > ${LUA_CALL_MAX_ARGS} then
      out[#out + 1] = 'big'
    else
      out[#out + 1] = redis.call(unpack(args))
      added = true
      redis.call('XDEL', KEYS[1], ARGV[i])
    end
  end
end
if added then
  ${APPLY_TTL}
end
return out`,
);

/**
 * Cluster step 1, in the dead-letter stream's slot: takes ownership of the
 * letters still there that no other replayer owns (a claim key with a
 * token, expiring after ARGV[2] ms so that a crashed replayer's letters are
 * not stuck), and returns their fields. The letters stay in the stream.
 * KEYS: dead-letter stream, then one claim key per id. ARGV: token, claimMs, ids...
 * Returns {server time in ms, per id its fields or false (gone, or owned by another replayer)}.
 */
export const claimDeadLetters = new Script(
  'claimDeadLetters',
  `${NOW}
local out = {}
for i = 3, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #e > 0 and redis.call('SET', KEYS[i - 1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[#out + 1] = e[1][2]
  else
    out[#out + 1] = false
  end
end
return {now, out}`,
);

/**
 * Cluster step 2, in the source stream's slot: adds each claimed letter
 * unless the replayed hash says it was added already (by a replayer that
 * stopped before deleting it), and records it there in the same step. Then
 * the stream's TTL as `stream.add` applies it, and the hash expires with
 * the stream. Refuses the whole batch (adds nothing) when the claims are
 * older than ARGV[5] ms by this node's clock: the replayer was paused so
 * long that its claims may have expired and another replayer may have moved
 * the letters meanwhile.
 * KEYS: source stream, replayed hash. ARGV: maxLen (0: none), ttl ms ('' none),
 * 'sliding' or 'absolute', claim time (ms, the dead-letter node's clock),
 * most age of the claims, then per letter: hash field, number of
 * field/value pairs, the pairs.
 * Returns the new IDs in order (the recorded ID for a letter added before;
 * 'big', neither added nor recorded, for a letter whose XADD has more than
 * LUA_CALL_MAX_ARGS arguments), or 'late' when refused.
 */
export const addReplayed = new Script(
  'addReplayed',
  `${NOW}
if now - tonumber(ARGV[4]) > tonumber(ARGV[5]) then return 'late' end
local key, maxLen, ttl, mode = KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out, added, i = {}, false, 6
while i <= #ARGV do
  local field, n = ARGV[i], tonumber(ARGV[i + 1])
  local f = {}
  for j = 1, 2 * n do f[j] = ARGV[i + 1 + j] end
  i = i + 2 + 2 * n
  local id = redis.call('HGET', KEYS[2], field)
  if not id then
    local args = {}
    ${XADD_HEAD}
    ${EVENT_FIELDS}
    if #args > ${LUA_CALL_MAX_ARGS} then
      id = 'big'
    else
      id = redis.call(unpack(args))
      redis.call('HSET', KEYS[2], field, id)
      added = true
    end
  end
  out[#out + 1] = id
end
if added then
  ${APPLY_TTL}
end
local pttl = redis.call('PTTL', key)
if pttl > 0 then redis.call('PEXPIRE', KEYS[2], pttl) elseif pttl == -1 then redis.call('PERSIST', KEYS[2]) end
return out`,
);

/**
 * Cluster step 3, in the dead-letter stream's slot: with ARGV[2] = 'done',
 * deletes the letters (they were added); either way gives up our claims.
 * KEYS: dead-letter stream, then one claim key per id. ARGV: token, 'done' or 'release', ids...
 */
export const finishReplay = new Script(
  'finishReplay',
  `for i = 3, #ARGV do
  if ARGV[2] == 'done' then redis.call('XDEL', KEYS[1], ARGV[i]) end
  if redis.call('GET', KEYS[i - 1]) == ARGV[1] then redis.call('DEL', KEYS[i - 1]) end
end
return 0`,
);

/**
 * What a replay needs to know of the letters without reading their
 * payloads: reading them whole, 500 at a time, only to pick IDs by source
 * held up to 500 payloads in the process (outside review AI). Reads one
 * letter per XRANGE, so Redis holds one letter at a time too.
 * KEYS: dead-letter stream. ARGV: 'ids', then IDs (those not found are left
 * out); or 'range', the start ('-' or '(' and an ID) and the most letters.
 * Returns per letter {id, source_stream, source_sink ('' for a field it
 * lacks), number of event field pairs (`n`, `p`, `t`, `h.*`), their bytes}.
 */
export const deadLetterPage = new Script(
  'deadLetterPage',
  `local out = {}
local function add(e)
  local f, stream, sink, pairs, bytes = e[2], '', '', 0, 0
  for j = 1, #f, 2 do
    local k = f[j]
    if k == 'source_stream' then stream = f[j + 1]
    elseif k == 'source_sink' then sink = f[j + 1]
    elseif k == 'n' or k == 'p' or k == 't' or string.sub(k, 1, 2) == 'h.' then
      pairs = pairs + 1
      bytes = bytes + #k + #f[j + 1]
    end
  end
  out[#out + 1] = {e[1], stream, sink, pairs, bytes}
end
if ARGV[1] == 'ids' then
  for i = 2, #ARGV do
    local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    if e[1] then add(e[1]) end
  end
else
  local start = ARGV[2]
  for _ = 1, tonumber(ARGV[3]) do
    local e = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)
    if not e[1] then break end
    add(e[1])
    -- Nothing comes after the largest ID (Redis refuses an exclusive start there).
    if e[1][1] == '18446744073709551615-18446744073709551615' then break end
    start = '(' .. e[1][1]
  end
end
return out`,
);

/**
 * Before the transaction of a letter too big for a script (see `bigBefore`),
 * on the connection that WATCHes the replayed hash: whether the claim is
 * older than ARGV[3] ms by this node's clock (checked first: a late replayer
 * must not finish a move another replayer may own now), else the ID
 * recorded for the letter (added by a replayer that stopped before deleting
 * it), false when none. Deciding both here, before MULTI, is what keeps the
 * XADD from being sent only to be taken back.
 * KEYS: replayed hash. ARGV: the letter's hash field, claim time (ms, the
 * dead-letter node's clock), most age of the claim.
 * Returns {1, false} when late, else {0, recorded ID or false}.
 */
export const bigCheck = new Script(
  'bigCheck',
  `${NOW}
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {1, false} end
return {0, redis.call('HGET', KEYS[1], ARGV[1])}`,
);

/**
 * A letter too big for a script's XADD (LUA_CALL_MAX_ARGS) is added by the
 * client, in one transaction in the source stream's slot with a script on
 * each side: `bigBefore`, the client's `XADD key * <fields>`, `bigAfter`.
 * Nothing runs between them, so the add and its record in the replayed hash
 * are one step, as in `addReplayed`. Sent with EVAL, not EVALSHA: a NOSCRIPT
 * inside MULTI would not stop the XADD.
 * The XADD is only sent when `bigCheck`, under WATCH of the replayed hash,
 * found the claim in time and no record: an entry added and taken back with
 * XDEL is counted by the stream's entries-added and not by the groups'
 * entries-read, so every sink of the stream counted it as 1 event trimmed
 * before it read it (outside review AJ, defect 2). `bigAfter` still takes
 * the entry back when late or recorded (then before anyone can read it:
 * blocked readers are served after EXEC), which only a WATCH lost to a
 * reconnect or a stall of the client between two commands can bring.
 * KEYS: source stream, replayed hash. ARGV: the letter's hash field.
 * Notes in the hash (field `<field> before`) the stream's last entry ID
 * ('' when empty, 'none' without the key), so `bigAfter` knows whether the
 * XADD added an entry.
 */
export const bigBefore = new Script(
  'bigBefore',
  `local before = 'none'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  before = e[1] and e[1][1] or ''
end
redis.call('HSET', KEYS[2], ARGV[1] .. ' before', before)
return 0`,
);

/**
 * See `bigBefore`. KEYS: source stream, replayed hash. ARGV: the letter's
 * hash field, claim time (ms, the dead-letter node's clock), most age of the
 * claim, maxLen (0: none), ttl ms ('' none), 'sliding' or 'absolute'.
 * Returns the new ID (the recorded one for a letter added before), 'late'
 * (nothing added), or 'failed' (the XADD added nothing: its error is in
 * EXEC's reply).
 */
export const bigAfter = new Script(
  'bigAfter',
  `${NOW}
local key, field, maxLen, ttl, mode = KEYS[1], ARGV[1], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local before = redis.call('HGET', KEYS[2], field .. ' before')
redis.call('HDEL', KEYS[2], field .. ' before')
local e = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
local id = e[1] and e[1][1] or ''
if not before or id == '' or id == before then return 'failed' end
local late = now - tonumber(ARGV[2]) > tonumber(ARGV[3])
local known = redis.call('HGET', KEYS[2], field)
if late or known then
  redis.call('XDEL', key, id)
  if before == 'none' then redis.call('DEL', key) end
  if late then return 'late' end
  return known
end
redis.call('HSET', KEYS[2], field, id)
if maxLen > 0 then redis.call('XTRIM', key, 'MAXLEN', '~', maxLen) end
${APPLY_TTL}
local pttl = redis.call('PTTL', key)
if pttl > 0 then redis.call('PEXPIRE', KEYS[2], pttl) elseif pttl == -1 then redis.call('PERSIST', KEYS[2]) end
return id`,
);
