/**
 * The dashboard's actions, each a POST with a JSON body that passed
 * `refuseAction` (security.ts): replay dead letters, delete dead letters,
 * destroy a stream. They run through the library's public API, as the CLI's
 * `dead replay` and `destroy` do.
 */
import { InvalidArgumentError, Stream } from 'pulse-streaming';
import type { CliRedis } from '../clients.js';
import { deadLetterStreamName, replay } from '../deadLetters.js';
import { requireStream } from '../inspect.js';
import type { StreamNames } from './collect.js';

const ID = /^\d+(-\d+)?$/;
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
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_IDS || !v.every((id) => typeof id === 'string' && ID.test(id))) {
    throw new InvalidArgumentError(`ids must be 1 to ${MAX_IDS} entry IDs like 1700000000000-0`);
  }
  return v as string[];
}

/** `POST api/replay {stream, ids?, sink?}`: adds dead letters back to their stream. */
export async function replayAction(client: CliRedis, value: unknown): Promise<{ replayed: string[] }> {
  const b = body(value);
  const sink = b.sink;
  if (sink !== undefined && (typeof sink !== 'string' || sink === ''))
    throw new InvalidArgumentError('sink must be a non-empty string');
  return { replayed: await replay(client, streamName(b), { sink, ids: ids(b, false) }) };
}

/** `POST api/delete-dead {stream, ids}`: deletes dead letters without replaying them. */
export async function deleteDeadAction(client: CliRedis, value: unknown): Promise<{ deleted: number }> {
  const b = body(value);
  const list = ids(b, true) as string[];
  await new Stream(deadLetterStreamName(streamName(b)), client, { maxLen: 0 }).remove(...list);
  return { deleted: list.length };
}

/** `POST api/destroy {stream}`: deletes a stream and the library's bookkeeping for it (its dead letters stay). */
export async function destroyAction(client: CliRedis, names: StreamNames, value: unknown): Promise<{ destroyed: string }> {
  const name = streamName(body(value));
  const stream = new Stream(name, client);
  await requireStream(client, name);
  await stream.destroy();
  names.invalidate();
  return { destroyed: name };
}
