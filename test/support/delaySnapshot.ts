/**
 * A retry's or nack's delay as Redis holds it, for tests that measure delays
 * on the server's side rather than with timers: server time, the event's idle
 * time, its due time in the sink's delays set and its delivery count; false
 * when the event is not delayed. KEYS: stream, delays set; ARGV: group, ID.
 */
export const DELAY_SNAPSHOT = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local due = redis.call('ZSCORE', KEYS[2], ARGV[2])
if #p == 0 or not due then return false end
return {now, p[1][3], due, p[1][4]}`;
