/**
 * The dashboard's actions, each a POST with a JSON body that passed
 * `refuseAction` (security.ts): replay dead letters, delete dead letters,
 * destroy a stream. They run through the library's public API, as the CLI's
 * `dead replay` and `destroy` do.
 */
import { InvalidArgumentError, Stream } from 'pulse-streaming';
import type { CliRedis } from '../clients.js';
import { deadLetterStreamName, missingDeadLetters, replay } from '../deadLetters.js';
import { canonicalEntryId, isEntryId } from '../entryIds.js';
import { nameList, sinkNames } from '../inspect.js';
import { requireStream } from '../streamChecks.js';
import { NotFound } from './api.js';
import type { StreamNames } from './collect.js';

/** Most IDs one action takes. */
const MAX_IDS = 1000;

function body(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('expected a JSON object');
  return value as Record<string, unknown>;
}

function streamName(b: Record<string, unknown>): string {
  const v = b.stream;
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError('stream must be a non-empty string');
  return v;
}

function ids(b: Record<string, unknown>, required: boolean): string[] | undefined {
  const v = b.ids;
  if (v === undefined && !required) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_IDS || !v.every((id) => typeof id === 'string' && isEntryId(id))) {
    throw new InvalidArgumentError(`ids must be 1 to ${MAX_IDS} entry IDs like 1700000000000-0`);
  }
  // One form (`5`, `5-0`, `05-0` name one letter): deduplicated, counted and looked up as Redis answers them.
  return [...new Set((v as string[]).map(canonicalEntryId))];
}

/**
 * `POST api/replay {stream, ids?, sink?}`: adds dead letters back to their
 * stream. Nothing replayed of a sink the stream does not have is refused
 * (HTTP 404), as the CLI's `dead replay --sink` does: a typo is likelier
 * than a sink that never dead-lettered, and a 200 would hide it.
 */
export async function replayAction(client: CliRedis, value: unknown): Promise<{ replayed: string[] }> {
  const b = body(value);
  const sink = b.sink;
  if (sink !== undefined && (typeof sink !== 'string' || sink === ''))
    throw new InvalidArgumentError('sink must be a non-empty string');
  const name = streamName(b);
  const replayed = await replay(client, name, { sink, ids: ids(b, false) });
  if (replayed.length === 0 && sink !== undefined) {
    const sinks = await sinkNames(client, name);
    if (!sinks.includes(sink)) {
      throw new NotFound(
        `stream ${name} has no sink ${JSON.stringify(sink)} and no dead letters from one: check the name (its sinks: ${nameList(sinks)})`,
      );
    }
  }
  return { replayed };
}

/**
 * `POST api/delete-dead {stream, ids}`: deletes dead letters without
 * replaying them. Says how many were there to delete and which were gone
 * already (replayed or deleted meanwhile, from another page or the CLI), so
 * an operator is not told a letter was deleted when it was replayed. Those
 * are the letters found just before the deletion (through the library's
 * `remove`, which keeps its loss bookkeeping but does not return a count).
 */
export async function deleteDeadAction(client: CliRedis, value: unknown): Promise<{ deleted: number; missing: string[] }> {
  const b = body(value);
  const wanted = ids(b, true) as string[];
  const name = streamName(b);
  const dead = new Stream(deadLetterStreamName(name), client, { maxLen: 0 });
  const missing = await missingDeadLetters(client, name, wanted);
  await dead.remove(...wanted);
  return { deleted: wanted.length - missing.length, missing };
}

/** `POST api/destroy {stream}`: deletes a stream and the library's bookkeeping for it (its dead letters stay). */
export async function destroyAction(client: CliRedis, names: StreamNames, value: unknown): Promise<{ destroyed: string }> {
  const name = streamName(body(value));
  const stream = new Stream(name, client);
  await requireStream(client, name);
  await stream.destroy();
  names.remove(name);
  return { destroyed: name };
}
