/**
 * A dead letter on a cluster: the dead-letter stream may live on another
 * node than the source stream, so the move takes two idempotent steps, an
 * XADD there, then the XACK here (never in neither, SEMANTICS.md section 6).
 * What keeps the event from being moved twice without a fault (outside
 * review E):
 * - while the steps run, the event stays this consumer's: its idle time is
 *   reset every third of the grace period, as `process()` does for running
 *   handlers, so a slow dead-letter node (SEMANTICS.md section 9) holding the
 *   XADD for grace periods does not let another instance claim it and move
 *   it too;
 * - the XACK is retried with backoff through a failover of the source
 *   stream's master, for `MOVE_ACK_RETRY_MS` or the grace period, whichever
 *   is longer: giving up at once left the event pending, and the next claim
 *   added it to the dead-letter stream again.
 * Both the claims (max deliveries) and `process()` (an event that does not
 * decode) move events this way.
 */
import type { Logger } from '../logger.js';
import { Backoff, sleep } from './backoff.js';
import { monotonicNow } from './clock.js';
import { LUA_CALL_MAX_ARGS } from './lua.js';
import { errorText, isRetryable } from './redisErrors.js';
import { Script } from './script.js';

/**
 * Least time the XACK of a dead letter is retried: a failover of the
 * source stream's master takes about Redis's `cluster-node-timeout`, 15 s
 * by default, before a replica takes over, then the client's next topology
 * refresh. Retried for the grace period when it is longer.
 */
export const MOVE_ACK_RETRY_MS = 20_000;

/** What the two steps of a dead letter need from the sink. */
export interface MoveHost {
  readonly graceMs: number;
  readonly logger: Logger;
  /** Aborts when the sink closes: the retries stop (the event stays pending, moved later). */
  readonly closed: AbortSignal;
  /** Resets to 0 the idle time of those of `ids` still pending for this consumer (the `touch` script). */
  keep(ids: string[]): Promise<unknown>;
}

/** The `reason` of an event dead-lettered at `maxDeliveries` (the claim script's, sinkClaims.ts', a run's). */
export const MAX_DELIVERIES_REASON = 'max deliveries reached';

/**
 * The dead letter of one entry, in a script (the claim script's
 * `maxDeliveries`, `deadLetterOne` of process()): `deadLetterFits(fields)`
 * says whether one XADD of a script can copy the entry's fields with the
 * dead-letter fields (`LUA_CALL_MAX_ARGS`: an entry another producer wrote
 * may have more; the client then moves it in two steps, see above);
 * `addDeadLetter(key, fields, stream, sink, id, deliveries, reason)` adds it.
 */
export const DEAD_LETTER_LUA = `local function deadLetterFits(fields)
  -- XADD key *, the entry's fields, and the five dead-letter field pairs.
  return 3 + #fields + 10 <= ${LUA_CALL_MAX_ARGS}
end
local function addDeadLetter(key, fields, stream, sink, id, deliveries, reason)
  local args = {'XADD', key, '*'}
  for _, v in ipairs(fields) do args[#args + 1] = v end
  for _, v in ipairs({'source_stream', stream, 'source_sink', sink, 'source_id', id, 'deliveries', deliveries, 'reason', reason}) do
    args[#args + 1] = v
  end
  redis.call(unpack(args))
end`;

/**
 * First step of a dead letter on a cluster (the dead-letter stream may be
 * in another slot): is the event still ours, and its fields. A gone entry is
 * acked here. KEYS: stream. ARGV: group, consumer, id.
 * Returns 'vanished' (pending for no one and gone from the stream: see
 * `deadLetterNow`), 'notours', 'gone', or the entry's fields.
 */
export const ownEntry = new Script(
  'ownEntry',
  `local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
if #p == 0 and #e == 0 then return 'vanished' end
if #p == 0 or p[1][2] ~= ARGV[2] then return 'notours' end
if #e == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  return 'gone'
end
return e[1][2]`,
);

/**
 * Runs `work`, the move of the events `ids()` (those not moved yet), while
 * they are kept this consumer's: their idle time is reset every third of the
 * grace period until `work` settles. One touch at a time: one stuck on a
 * node that is down must not pile up others behind it.
 */
export async function keptWhileMoved<T>(host: MoveHost, ids: () => string[], work: () => Promise<T>): Promise<T> {
  let touching = false;
  const timer = setInterval(
    () => {
      const left = ids();
      if (touching || left.length === 0) return;
      touching = true;
      host
        .keep(left)
        .catch((err: unknown) =>
          host.logger.debug({ ids: left.slice(0, 10), err: errorText(err) }, 'keeping dead letters being moved failed'),
        )
        .finally(() => {
          touching = false;
        });
    },
    Math.max(5, Math.floor(host.graceMs / 3)),
  );
  // The move's own commands keep the process alive while they wait, not this timer.
  timer.unref();
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * Sends `ack`, the XACK (or the script) that ends the move of event `id` of
 * stream `stream` in the source slot, retried with backoff while Redis cannot
 * take it (a dropped connection, a failover, CLUSTERDOWN), for
 * `MOVE_ACK_RETRY_MS` or the grace period, whichever is longer, until the
 * sink closes, or until Redis refuses it for good.
 * @throws the last error when it gives up: the event stays pending (it is in
 *   both streams), and is moved again once idle, a second dead letter.
 */
export async function ackMoved(host: MoveHost, stream: string, id: string, ack: () => Promise<unknown>): Promise<void> {
  const until = monotonicNow() + Math.max(host.graceMs, MOVE_ACK_RETRY_MS);
  const backoff = new Backoff(50, 1000);
  for (;;) {
    try {
      await ack();
      if (backoff.failures > 0)
        host.logger.info({ stream, id, failures: backoff.failures }, 'ack of a dead-lettered event succeeded after retries');
      return;
    } catch (err) {
      const retryInMs = backoff.next();
      if (!isRetryable(err) || host.closed.aborted || monotonicNow() + retryInMs >= until) {
        host.logger.warn(
          { stream, id, failures: backoff.failures, err: errorText(err) },
          'ack ending a dead letter failed: the event stays pending (in both streams) and may be dead-lettered again',
        );
        throw err;
      }
      if (backoff.failures === 1)
        host.logger.info({ stream, id, retryInMs, err: errorText(err) }, 'ack of a dead-lettered event failed, retrying');
      await sleep(retryInMs, host.closed);
    }
  }
}
