/**
 * The scripts of giving back and taking back events a sink read but never
 * handed out (see giveBack.ts): the delivery count set back by one with the
 * idle time kept, and raised again when a subscriber of the same instance
 * takes them within the grace period.
 */
import { Script } from './script.js';

/**
 * Sets the delivery count of events still pending for this consumer with
 * the count they were read with back by one, keeping their idle time. An
 * event another consumer took, one delivered again since (another count),
 * and one deleted from the stream (XCLAIM would drop it from the pending
 * list: the read path reports it) are left as they are. One pending for no
 * one and gone from the stream (Redis rolled back under the sink, or handled
 * elsewhere and trimmed) is returned apart: nothing can give it back.
 * KEYS: stream. ARGV: group, consumer, then id, count pairs. Returns {given, vanished}.
 */
export const giveBackScript = new Script(
  'giveBack',
  `local given, vanished = {}, {}
for i = 3, #ARGV, 2 do
  local id, count = ARGV[i], tonumber(ARGV[i + 1])
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 0 and #redis.call('XRANGE', KEYS[1], id, id) == 0 then
    vanished[#vanished + 1] = id
  elseif #p > 0 and p[1][2] == ARGV[2] and tonumber(p[1][4]) == count and count > 0
    and #redis.call('XRANGE', KEYS[1], id, id) > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', p[1][3], 'RETRYCOUNT', count - 1, 'JUSTID')
    given[#given + 1] = id
  end
end
return {given, vanished}`,
);

/**
 * Takes back events given back (see `giveBackScript`) that are still pending
 * for this consumer with the count they were given back with, and still in
 * the stream: delivery count up by one, idle time 0, as a read would. The
 * others (claimed elsewhere, delivered again, deleted: the claim path
 * reports those) are left alone. KEYS: stream. ARGV: group, consumer, then
 * id, count pairs. Returns {id, fields, count} of those taken back.
 */
export const takeBackScript = new Script(
  'takeBack',
  `local taken = {}
for i = 3, #ARGV, 2 do
  local id, count = ARGV[i], tonumber(ARGV[i + 1])
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p > 0 and p[1][2] == ARGV[2] and tonumber(p[1][4]) == count then
    local e = redis.call('XRANGE', KEYS[1], id, id)
    if #e > 0 then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'RETRYCOUNT', count + 1, 'JUSTID')
      taken[#taken + 1] = {id, e[1][2], count + 1}
    end
  end
end
return taken`,
);
