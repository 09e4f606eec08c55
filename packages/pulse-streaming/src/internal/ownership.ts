/**
 * This consumer's hold on events and streams: whether it still owns an event
 * it is working on, joining a stream's group, and leaving a stream it joined
 * but will not read.
 */
import { ClosedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { positionsKey, sinkKeys, sinkRegistryKey } from './keys.js';
import { takeObituary } from './lossScripts.js';
import { NOW } from './lua.js';
import { refusedAsMigrating } from './migratingRead.js';
import { joinOneByOne } from './migratingWrites.js';
import { sayIfStartAhead } from './redisClock.js';
import { errorText, toPulseError } from './redisErrors.js';
import { Script } from './script.js';
import { createGroup, EXPIRE_DELAYS } from './scripts.js';
import { leave, newConsumerName } from './sinkLeave.js';
import type { ResolvedStart } from './start.js';
import { sayIfStartGap } from './startGap.js';
import { DESTROYED } from './streamGone.js';
import type { StreamHandle } from './streamHandle.js';

/**
 * Resets the idle time of one pending event of ours (`inProgress`), and says
 * whether it is still ours. Atomic, so a claim by another consumer cannot
 * slip between the check and the reset.
 * KEYS: stream, delays. ARGV: group, consumer, id, keepGoneMs.
 * Returns {'ok'}, {'gone'} (ours, but trimmed or deleted from the stream:
 * left pending for the handler's ack or nack to decide), {'notpending'}
 * (acked, dead-lettered or reported lost) or {'other', owner}. A gone one's
 * idle time cannot be reset (XCLAIM drops a deleted entry): it is kept in the
 * delays set for `keepGoneMs`, as `touch` does for `process()` handlers, so
 * that no other instance's claim reports it lost while the handler works
 * (the set of a stream with a time to live then expires at its last due
 * time, as `touch` makes it).
 */
export const keepOwned = new Script(
  'keepOwned',
  `${EXPIRE_DELAYS}
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then return {'notpending'} end
if p[1][2] ~= ARGV[2] then return {'other', p[1][2]} end
if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then
  -- Without KEYS[2] (its slot migrates: see migratingWrites.ts) the caller keeps it in the delays set.
  if not KEYS[2] then return {'gone'} end
  ${NOW}
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
  expireDelays(KEYS[2], KEYS[1])
  return {'gone'}
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', 0, 'JUSTID')
return {'ok'}`,
);

/**
 * Leaves a stream this consumer joined (the sink's `ensureGroup`) but will
 * not read: `newSink` failed, or `addStream` lost a race with `close()`. On
 * the user's client (the control connection is gone or closing). The group
 * is destroyed only when this call created it and nobody else uses it: a
 * group that existed keeps its position for the sink's other instances.
 * Never throws: a failure is logged, and the stale consumer is removed later
 * by another instance.
 */
export async function undoJoin(
  stream: StreamHandle,
  sinkName: string,
  consumer: string,
  created: boolean,
  graceMs: number,
  logger: Logger,
): Promise<void> {
  const keys = sinkKeys(stream.name, sinkName);
  try {
    await evalScript(
      stream.driver,
      leave,
      [stream.key, keys.consumers, keys.lease, sinkRegistryKey(stream.name), keys.delays, positionsKey(stream.name)],
      [sinkName, consumer, created ? '1' : '0', 2 * graceMs],
    );
  } catch (err) {
    logger.warn({ stream: stream.name, sink: sinkName, err: errorText(err) }, 'could not leave a stream this sink will not read');
  }
}

/** Creates the sink's group on a stream unless it exists, and registers the consumer. True when it created the group. */
export async function joinGroup(
  stream: StreamHandle,
  sinkName: string,
  start: ResolvedStart,
  consumer: string,
): Promise<boolean> {
  const keys = sinkKeys(stream.name, sinkName);
  const args = [sinkName, start.kind === 'newest' ? '$newest' : start.id, stream.ttlMs ?? '', consumer];
  const registry = sinkRegistryKey(stream.name);
  try {
    let created: unknown;
    try {
      created = await evalScript(stream.driver, createGroup, [stream.key, registry, keys.consumers], args);
    } catch (err) {
      // Its slot migrates and a key is missing (a new sink's consumers set): see migratingWrites.ts.
      if (!refusedAsMigrating(err)) throw err;
      const split = { stream: stream.key, registry, consumers: keys.consumers };
      created = await joinOneByOne(stream.driver, createGroup, split, { sinkName, consumer, rest: args });
    }
    if (Number(created) !== 1) return false;
    // A group created now starts at the date: say so when Redis's clock is behind it.
    await sayIfStartAhead(stream, start, `sink ${sinkName}`);
    // And at an ID or date behind entries trimmed or deleted since: they are its events, gone.
    await sayIfStartGap(stream, start, `sink ${sinkName}`);
    return true;
  } catch (err) {
    throw toPulseError(err, `create sink ${sinkName} on stream ${stream.name}`);
  }
}

/**
 * Joins `stream`'s group for `sink.addStream()`. When the sink closed
 * meanwhile (`closed()`), `close()` did not know this stream: the join is
 * undone here, or this instance stays a consumer of the group there and
 * blocks its removal.
 * @throws ClosedError then.
 */
export async function joinStream(
  stream: StreamHandle,
  sink: { readonly name: string; readonly consumerName: string; readonly graceMs: number; readonly logger: Logger },
  start: ResolvedStart,
  closed: () => boolean,
): Promise<void> {
  const created = await joinGroup(stream, sink.name, start, sink.consumerName);
  if (!closed()) return;
  await undoJoin(stream, sink.name, sink.consumerName, created, sink.graceMs, sink.logger);
  throw new ClosedError('sink is closed');
}

/**
 * Joins a new consumer of sink `sinkName` to `stream`'s group and opens its
 * control connection. `leave` undoes the join: a consumer that never runs
 * would block the group's removal. The join is undone here when the
 * connection cannot open.
 */
export async function joinNewConsumer(
  stream: StreamHandle,
  sinkName: string,
  start: ResolvedStart,
  graceMs: number,
): Promise<{ consumer: string; control: OwnedConnection; leave: () => Promise<void> }> {
  const consumer = newConsumerName();
  const created = await joinGroup(stream, sinkName, start, consumer);
  const leave = () => undoJoin(stream, sinkName, consumer, created, graceMs, stream.logger);
  try {
    // Idle up to a grace period / 2 between its beats: node-redis' socketTimeout, an idle timeout,
    // must not close it then (review Q); see ownSocketTimeout.
    const control = await stream.driver.openOwned(`pulse:sink:${sinkName}:control`, stream.logger, graceMs);
    return { consumer, control, leave };
  } catch (err) {
    await leave();
    throw toPulseError(err, 'open sink connection');
  }
}

/**
 * Counts what `stream.destroy()` took from sink `sinkName` (its unread and
 * pending events), when it left that in the sink's obituary and no instance
 * took it yet: an instance that creates or joins the group after the
 * destroy (a deploy restarting the sink) reports it, as one that watched the
 * key go would (streamGone.ts). Before, only such a watcher took it, and a
 * sink with no instance running then lost the events without a count or a
 * line (outside review AK, defect 5). Taking it marks it taken, so that one
 * instance counts it, whichever comes first. Called once the join stands (a
 * join undone by `close()` leaves it to the next). Never throws: a failure
 * is logged, and the obituary stays for another instance, for the rest of
 * its 10 minutes.
 */
export async function countObituaryAtJoin(
  stream: StreamHandle,
  sinkName: string,
  logger: Logger,
  countLost: (stream: string, count: number, why: string) => void,
): Promise<void> {
  try {
    const n = Number(await evalScript(stream.driver, takeObituary, [sinkKeys(stream.name, sinkName).obituary], []));
    // -1: none (not destroyed, or its 10 minutes are over); -2: another instance took it; 0: nothing was taken.
    if (n > 0) countLost(stream.name, n, DESTROYED);
  } catch (err) {
    logger.warn(
      { stream: stream.name, sink: sinkName, err: errorText(err) },
      'could not read what a destroy() of the stream took from this sink: another instance may report it',
    );
  }
}
