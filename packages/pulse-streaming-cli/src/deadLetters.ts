/**
 * Dead letters for the command-line program, on the library's API
 * (`readDeadLetters`, `replayDeadLetters`): events a sink gave up on after
 * `maxDeliveries`, kept in the stream `<stream>:dead` with their `n`, `p`
 * and `t` plus `source_stream`, `source_sink`, `source_id`, `deliveries`
 * and `reason`. Lists that show no payload read the letters through the
 * dashboard's preview script instead, which cuts the payloads inside Redis.
 */
import {
  type DeadLetter,
  InvalidArgumentError,
  type RedisClient,
  readDeadLetters,
  replayDeadLetters,
  Stream,
} from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import type { CliRedis } from './clients.js';
import { PREVIEW_RANGE } from './dashboard/payload.js';
import { canonicalEntryId, isEntryId } from './entryIds.js';
import { entryList, list, text } from './replies.js';

/** Name of the dead-letter stream of `stream` (the library's default, `<stream>:dead`). */
export function deadLetterStreamName(stream: string): string {
  return `${stream}:dead`;
}

/** A handle on the source stream that never trims it: a replay only adds. */
function sourceStream(redis: RedisClient, name: string): Stream {
  return new Stream(name, redis, { maxLen: 0 });
}

function checkId(id: string): string {
  if (!isEntryId(id)) throw new InvalidArgumentError(`invalid entry ID ${JSON.stringify(id)}: expected <ms>-<seq>`);
  return canonicalEntryId(id);
}

/** A dead letter without its payload or headers: what the `dead` table shows. */
export interface DeadLetterSummary {
  /** Its ID in the dead-letter stream. */
  readonly id: string;
  readonly eventName: string;
  /** Undefined when the event had none. */
  readonly topic: string | undefined;
  readonly sourceSink: string;
  readonly sourceId: string;
  readonly deliveries: number;
  readonly reason: string;
}

/**
 * The dead letters of `stream` without their payloads, oldest first, at
 * most `count`: the payloads are cut inside Redis (the dashboard's preview
 * script, keeping 0 bytes), so a list of 5 MB letters costs neither this
 * process nor the server's output buffer their size.
 */
export async function listDeadLetterSummaries(client: CliRedis, stream: string, count: number): Promise<DeadLetterSummary[]> {
  const key = streamKey(deadLetterStreamName(stream));
  const reply = await client.call('EVAL', PREVIEW_RANGE, '1', key, '-', String(count), '0', 'forward');
  return entryList(reply).map((e) => {
    const field = (f: string): string => text(e.fields.get(f));
    const topic = field('t');
    return {
      id: e.id,
      eventName: field('n'),
      topic: topic === '' ? undefined : topic,
      sourceSink: field('source_sink'),
      sourceId: field('source_id'),
      deliveries: Number(field('deliveries') || 0),
      reason: field('reason'),
    };
  });
}

/** Where a dead letter came from: its `source_stream` and `source_sink` ('' for a field it lacks). */
export interface DeadLetterSource {
  readonly sourceStream: string;
  readonly sourceSink: string;
}

/**
 * For each of `ids`, the source of that letter in the dead-letter stream of
 * `stream`, or undefined when it is not there, reading only those two fields,
 * not the payloads.
 */
export async function deadLetterSources(
  client: CliRedis,
  stream: string,
  ids: readonly string[],
): Promise<(DeadLetterSource | undefined)[]> {
  const key = streamKey(deadLetterStreamName(stream));
  const reply = list(await client.call('EVAL', SOURCES, '1', key, ...ids.map(checkId)));
  return ids.map((_, i) => {
    const found = reply[i];
    if (!Array.isArray(found)) return undefined;
    return { sourceStream: text(found[0]), sourceSink: text(found[1]) };
  });
}

/**
 * Finds which of `ids` are letters of the dead-letter stream of `stream`,
 * reading only their sources, not their payloads.
 * @returns the IDs that are not.
 */
export async function missingDeadLetters(client: CliRedis, stream: string, ids: readonly string[]): Promise<string[]> {
  const sources = await deadLetterSources(client, stream, ids);
  return ids.filter((_, i) => sources[i] === undefined);
}

/**
 * For each ID in ARGV, `{source_stream, source_sink}` of that entry of KEYS[1]
 * ('' for a field it lacks), or nil when absent.
 */
const SOURCES = `
local out = {}
for i, id in ipairs(ARGV) do
  local e = redis.call('XRANGE', KEYS[1], id, id)
  out[i] = false
  if e[1] then
    local f = e[1][2]
    local source = {'', ''}
    for j = 1, #f, 2 do
      if f[j] == 'source_stream' then source[1] = f[j + 1] end
      if f[j] == 'source_sink' then source[2] = f[j + 1] end
    end
    out[i] = source
  end
end
return out`;

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
