/**
 * `EVAL ORPHANS 1 <stream key> <n> [<payload prefix>]`: adds n events, and
 * leaves them read by consumer `dead` of group `sink` and idle for a minute
 * (XCLAIM IDLE): what a consumer that died long ago leaves behind.
 * Server-side, so that setting up is quick. Returns n.
 */
export const ORPHANS = `
local ids = {}
local prefix = ARGV[2] or 'p'
for i = 1, tonumber(ARGV[1]) do ids[i] = redis.call('XADD', KEYS[1], '*', 'n', 'event', 'p', prefix .. i) end
redis.call('XGROUP', 'CREATE', KEYS[1], 'sink', '0')
redis.call('XREADGROUP', 'GROUP', 'sink', 'dead', 'COUNT', #ids, 'STREAMS', KEYS[1], '>')
for i = 1, #ids, 1000 do
  local args = {'XCLAIM', KEYS[1], 'sink', 'dead', 0}
  for j = i, math.min(i + 999, #ids) do args[#args + 1] = ids[j] end
  for _, a in ipairs({'IDLE', 60000, 'JUSTID'}) do args[#args + 1] = a end
  redis.call(unpack(args))
end
return #ids`;
