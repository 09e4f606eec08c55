/**
 * What `process()` and `processBatch()` need of their sink (`processHost`),
 * and the dead letter of an event whose data does not decode, moved at once
 * (`deadLetterNow`). Their nacks are in nacks.ts.
 */
import type { PulseError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { SubscribeOptions } from '../options.js';
import type { Subscription } from '../subscription.js';
import { ackMoved, DEAD_LETTER_LUA, keptWhileMoved, type MoveHost, ownEntry } from './deadLetterMove.js';
import type { Connection, Driver } from './driver.js';
import { evalScript } from './driver.js';
import { HEADER_PREFIX } from './headers.js';
import { idsByStream } from './ids.js';
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC, sinkKeys, streamKey } from './keys.js';
import { nackEvents } from './nacks.js';
import type { ProcessHost } from './processHost.js';
import { errorText, toPulseError } from './redisErrors.js';
import { entries, str } from './replies.js';
import { Script } from './script.js';
import type { SinkHolds } from './sinkHolds.js';
import type { SinkCounters, SinkSettings } from './sinkState.js';
import { untilAnswered } from './untilAnswered.js';

/**
 * Moves a pending event of ours to the dead-letter stream and acks it, in
 * one step (a single node). Nothing when it is no longer ours (claimed by
 * another consumer after the grace period: that one decides).
 * The XADD comes before the XACK and the ZREM (as in the claim script): Lua
 * does not roll back, so an XADD Redis refuses (a dead-letter key of another
 * type, an ACL) must leave the event pending, never acked and in no stream.
 * KEYS: stream, dead-letter stream, delays. ARGV: group, consumer, id, sink
 * name, stream name, deliveries, reason.
 * Returns 'moved', 'notours', 'gone' (trimmed or deleted: acked, to report
 * lost), 'toobig' (more fields than a script can copy: nothing done, the
 * client moves it) or 'vanished' (pending for no one and gone from the stream: Redis
 * rolled back under this instance, or another consumer handled it and it was
 * trimmed since; see `deadLetterNow`).
 */
const deadLetterOne = new Script(
  'deadLetterOne',
  `${DEAD_LETTER_LUA}
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
if #p == 0 and #e == 0 then return 'vanished' end
if #p == 0 or p[1][2] ~= ARGV[2] then return 'notours' end
-- More fields than one call of a script takes: the client moves it.
if #e > 0 and not deadLetterFits(e[1][2]) then return 'toobig' end
local outcome = 'gone'
if #e > 0 then
  addDeadLetter(KEYS[2], e[1][2], ARGV[5], ARGV[4], ARGV[3], ARGV[6], ARGV[7])
  outcome = 'moved'
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[3])
return outcome`,
);

/** What a dead letter needs from its sink. */
export interface DeadLetterHost {
  readonly driver: Driver;
  readonly sinkName: string;
  readonly consumerName: string;
  /** The sink's `deadLetterStream`, if set (else `<stream name>:dead`). */
  readonly deadLetterStream: string | undefined;
  readonly noAck: boolean;
  readonly counters: SinkCounters;
  readonly logger: Logger;
  readonly graceMs: number;
  /** Aborts when the sink closes: a dead letter's ack is retried until then at most. */
  readonly closed: AbortSignal;
  countLost(stream: string, count: number, why: string, ids?: readonly string[]): void;
  /** Of `ids` (events of stream `stream` pending for no one and gone from it), those Redis lost in a rollback. */
  lostByRedis(stream: string, ids: readonly string[]): Promise<string[]>;
  /** Resets to 0 the idle time of those of `ids` (stream `stream`) still pending for this consumer. */
  keep(stream: string, ids: string[]): Promise<unknown>;
}

/**
 * Moves `event` to the dead-letter stream now, with `reason`, whatever its
 * delivery count: in one step on a single node, in two idempotent ones on a
 * cluster or for an entry with more fields than a script can copy (added,
 * then acked: never in neither). A `noAck` event is not
 * pending: it is only copied there.
 */
export async function deadLetterNow(host: DeadLetterHost, event: SinkEvent, reason: string): Promise<void> {
  const key = streamKey(event.streamName);
  const deadName = host.deadLetterStream ?? `${event.streamName}:dead`;
  const deadKey = streamKey(deadName);
  const id = event.id;
  const source = ['source_stream', event.streamName, 'source_sink', host.sinkName, 'source_id', id];
  const tail = [...source, 'deliveries', String(event.deliveryCount), 'reason', reason];
  event.markSettled();
  let outcome: string | undefined;
  try {
    if (!host.driver.isCluster && !host.noAck) {
      const keys = [key, deadKey, sinkKeys(event.streamName, host.sinkName).delays];
      outcome = str(
        await evalScript(host.driver, deadLetterOne, keys, [
          host.sinkName,
          host.consumerName,
          id,
          host.sinkName,
          event.streamName,
          String(event.deliveryCount),
          reason,
        ]),
      );
    }
    // A cluster (two slots), a noAck event (not pending), or an entry too big for the script: in two steps.
    if (outcome === undefined || outcome === 'toobig') {
      const move = async (): Promise<string> => {
        let fields: unknown;
        if (host.noAck) {
          const found = entries(await host.driver.send(['XRANGE', key, id, id], key))[0];
          fields = found ? found[1] : 'gone';
        } else {
          fields = await evalScript(host.driver, ownEntry, [key], [host.sinkName, host.consumerName, id]);
        }
        if (!Array.isArray(fields)) return str(fields);
        await host.driver.send(['XADD', deadKey, '*', ...(fields as Buffer[]), ...tail], deadKey);
        if (!host.noAck)
          await ackMoved(mover, event.streamName, id, () => host.driver.send(['XACK', key, host.sinkName, id], key));
        return 'moved';
      };
      // Kept ours meanwhile (no longer by process(): it is settled), the ack retried through a failover (deadLetterMove.ts).
      const mover: MoveHost = {
        graceMs: host.graceMs,
        logger: host.logger,
        closed: host.closed,
        keep: (ids) => host.keep(event.streamName, ids),
      };
      outcome = host.noAck ? await move() : await keptWhileMoved(mover, () => [id], move);
    }
    // Redis rolled back under this instance: the only copy is the one it holds, written from it.
    if (outcome === 'vanished' && (await host.lostByRedis(event.streamName, [id])).length > 0) {
      await host.driver.send(['XADD', deadKey, '*', ...heldFields(event), ...tail], deadKey);
      host.logger.warn(
        { stream: event.streamName, id },
        'event Redis lost in a rollback dead-lettered from the copy this instance held (fields it does not know are not kept)',
      );
      outcome = 'moved';
    }
  } catch (err) {
    throw toPulseError(err, `dead-letter event ${id} of stream ${event.streamName}`);
  }
  if (outcome === 'moved') {
    host.counters.deadLettered++;
    host.logger.warn({ stream: event.streamName, id, deadLetterStream: deadName, reason }, 'event dead-lettered');
  } else if (outcome === 'gone') {
    host.countLost(event.streamName, 1, 'event trimmed or deleted before it could be dead-lettered', [id]);
  } else {
    host.logger.info(
      { stream: event.streamName, id, reason },
      'event not dead-lettered: another consumer took it after the grace period',
    );
  }
}

/** The entry fields of `event` as its producer wrote them (see `add`): name, payload, topic, headers. */
function heldFields(event: SinkEvent): Array<string | Buffer> {
  const fields: Array<string | Buffer> = [FIELD_NAME, event.eventName, FIELD_PAYLOAD, event.payload];
  if (event.topic !== undefined) fields.push(FIELD_TOPIC, event.topic);
  for (const [name, value] of Object.entries(event.headers)) fields.push(`${HEADER_PREFIX}${name}`, value);
  return fields;
}

/** What `processHost` is built from: a sink's parts. */
export interface ProcessParts {
  subscribe(options?: SubscribeOptions): Subscription<SinkEvent>;
  readonly sinkName: string;
  readonly consumerName: string;
  readonly settings: SinkSettings;
  readonly driver: Driver;
  /**
   * The sink's own connection while it is open (the user's client after
   * `close()`): where it holds buffered events. Nacks go there too, so that
   * each runs after every hold sent before it: a hold arriving after a nack
   * would reset the idle time the nack set and undo its delay.
   */
  connection(): Connection;
  readonly holds: SinkHolds;
  readonly counters: SinkCounters;
  readonly logger: Logger;
  /** Wakes the sink's claims on stream `streamName` in `ms` (nacked events come due then). */
  dueIn(streamName: string, ms: number): void;
  /**
   * Ends the sink with `err`: Redis refused a dead letter for good. Optional:
   * without it only the `process()` call that found the refusal stops.
   */
  readonly fail?: (err: PulseError) => void;
}

/** What `process()` and `processBatch()` use of a sink. */
export function processHost(p: ProcessParts): ProcessHost {
  const { settings, holds } = p;
  const deadLetters: DeadLetterHost = {
    driver: p.driver,
    sinkName: p.sinkName,
    consumerName: p.consumerName,
    deadLetterStream: settings.deadLetterStream,
    noAck: settings.noAck,
    counters: p.counters,
    logger: p.logger,
    graceMs: settings.graceMs,
    closed: holds.closed,
    countLost: (stream, count, why, ids) => holds.countLost(stream, count, why, ids),
    lostByRedis: (stream, ids) => holds.lostByRedis(stream, ids),
    keep: (stream, ids) => holds.touch(p.driver, stream, 0, ids),
  };
  /** Said once: in-progress touches stopped because the user's client was closed. */
  let toldClosed = false;
  return {
    subscribe: p.subscribe,
    name: p.sinkName,
    consumerName: p.consumerName,
    logger: p.logger,
    graceMs: settings.graceMs,
    noAck: settings.noAck,
    maxDeliveries: settings.maxDeliveries,
    closed: holds.closed,
    trackRunning: (run, untilSettled) => holds.running.track(run, untilSettled),
    keepInProgress: async (running) => {
      // On the user's client, never behind the sink's own background work. Once
      // that client is closed (after close()), every touch would fail, forever.
      const closed = p.driver.closed();
      if (closed !== undefined) {
        if (!toldClosed)
          p.logger.warn(
            { count: running.size, err: closed },
            'cannot keep events in progress any more: they go to another consumer after the grace period',
          );
        toldClosed = true;
        return false;
      }
      await Promise.all(
        [...idsByStream(running)].map(([name, ids]) =>
          holds.keepInProgress(p.driver, name, ids).catch((err: unknown) => {
            // Cut off by your client's close while in flight: the next round says once that no
            // touch can be made any more, not this (a loaded full run, node-redis).
            if (p.driver.closed() === undefined)
              p.logger.warn({ count: ids.length, err: errorText(err) }, 'keeping events in progress failed');
          }),
        ),
      );
      return true;
    },
    nack: async (events, delayMs) => {
      if (settings.noAck) return;
      await nackEvents(holds, p.connection(), events, delayMs);
      for (const name of new Set(events.map((ev) => ev.streamName))) p.dueIn(name, delayMs);
    },
    // Acked by it: a claim of ours under way since then must not hand it out again (heldHere.ts).
    deadLetter: (event, reason) =>
      deadLetterNow(deadLetters, event, reason).then(() => holds.running.settled(event.streamName, [event.id])),
    groupGone: async (events, how) => {
      for (const [name, ids] of idsByStream(events)) {
        // Retried as the nack was: the sink's own connection may still be reconnecting when the user's answered.
        const failed = await untilAnswered(() => holds.groupGone(name, ids, how), {
          stopping: holds.closed,
          logger: p.logger,
          what: 'the check of a stream whose consumer group was gone',
          fields: { stream: name, ids },
        });
        if (failed)
          p.logger.warn(
            { stream: name, ids, err: errorText(failed.err) },
            `${how}, and the check that tells whether Redis lost them failed: if it did, they are lost`,
          );
      }
    },
    fail: (err) => p.fail?.(err),
  };
}
