/** Whether this consumer still owns an event it is working on. */
import { Script } from './script.js';

/**
 * Resets the idle time of one pending event of ours (`inProgress`), and says
 * whether it is still ours. Atomic, so a claim by another consumer cannot
 * slip between the check and the reset.
 * KEYS: stream. ARGV: group, consumer, id.
 * Returns {'ok'}, {'gone'} (ours, but trimmed or deleted from the stream:
 * left pending for the handler's ack or nack to decide), {'notpending'}
 * (acked, dead-lettered or reported lost) or {'other', owner}.
 */
export const keepOwned = new Script(
  'keepOwned',
  `local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then return {'notpending'} end
if p[1][2] ~= ARGV[2] then return {'other', p[1][2]} end
if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then return {'gone'} end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', 0, 'JUSTID')
return {'ok'}`,
);
