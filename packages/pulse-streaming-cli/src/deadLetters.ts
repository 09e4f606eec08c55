/**
 * Dead letters for the command-line program, on the library's API
 * (`readDeadLetters`, `replayDeadLetters`): events a sink gave up on after
 * `maxDeliveries`, kept in the stream `<stream>:dead` with their `n`, `p`
 * and `t` plus `source_stream`, `source_sink`, `source_id`, `deliveries`
 * and `reason`.
 */
import {
  type DeadLetter,
  InvalidArgumentError,
  type RedisClient,
  readDeadLetters,
  replayDeadLetters,
  Stream,
} from 'pulse-streaming';

const ID = /^\d+(-\d+)?$/;

/** Name of the dead-letter stream of `stream` (the library's default, `<stream>:dead`). */
export function deadLetterStreamName(stream: string): string {
  return `${stream}:dead`;
}

/** A handle on the source stream that never trims it: a replay only adds. */
function sourceStream(redis: RedisClient, name: string): Stream {
  return new Stream(name, redis, { maxLen: 0 });
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new InvalidArgumentError(`invalid entry ID ${JSON.stringify(id)}: expected <ms>-<seq>`);
  return id;
}

/**
 * The dead letters of `stream`, oldest first, at most `count`.
 * @param redis - an ioredis or node-redis client, as for `new Stream`.
 */
export function listDeadLetters(redis: RedisClient, stream: string, count: number): Promise<DeadLetter[]> {
  return readDeadLetters(sourceStream(redis, stream), { count });
}

/**
 * One dead letter of `stream` by its ID in the dead-letter stream, or undefined.
 * @throws InvalidArgumentError for a malformed ID.
 */
export async function getDeadLetter(redis: RedisClient, stream: string, id: string): Promise<DeadLetter | undefined> {
  const [found] = await readDeadLetters(sourceStream(redis, stream), { ids: [checkId(id)] });
  return found;
}

/**
 * Replays dead letters of `stream` (optionally only those of one sink, or
 * only some IDs): each is added back to the stream as a new event (`n`, `p`,
 * `t`) and deleted from the dead-letter stream, each exactly once even when
 * two replays overlap (see `replayDeadLetters`). Every sink of the stream
 * receives the new events. The stream is not trimmed, and its expiry is left
 * as it is: the command line does not know a stream's `ttlMs`, so a stream
 * that expired comes back without one.
 * @returns the IDs of the new events.
 */
export function replay(
  redis: RedisClient,
  stream: string,
  options: { sink?: string | undefined; ids?: string[] | undefined },
): Promise<string[]> {
  return replayDeadLetters(sourceStream(redis, stream), {
    ...(options.sink !== undefined ? { sink: options.sink } : {}),
    ...(options.ids !== undefined ? { ids: options.ids.map(checkId) } : {}),
  });
}
