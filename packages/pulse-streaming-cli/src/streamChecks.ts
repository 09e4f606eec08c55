/**
 * What a command checks of the stream it is given before it reads, writes
 * or waits for it: a name the library takes, and a key that is a stream or
 * absent, each refused with the error the user acts on.
 */
import { Stream } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import type { CliRedis } from './clients.js';
import { CliError } from './errors.js';
import { displayText, quoted } from './format.js';
import { text } from './replies.js';

/** The prefix of every stream key. */
export const STREAM_PREFIX = 'pulse:stream:';
const PREFIX = STREAM_PREFIX;

/**
 * Throws the library's `InvalidArgumentError` (bad usage: exit code 2) for a
 * stream name it refuses, as `add`, `tail` and `dead replay` do. Called where
 * no key has the name: a key written outside the library under such a name is
 * still inspected.
 */
export function refuseBadName(client: CliRedis, name: string): void {
  new Stream(name, client as never, { maxLen: 0 });
}

/**
 * What `key` is when it is a stream or absent: the commands that read,
 * write or wait for a stream take either.
 * @throws CliError naming what is there instead.
 */
export async function streamOrAbsent(client: CliRedis, key: string): Promise<'stream' | 'none'> {
  const type = text(await client.call('TYPE', key));
  if (type === 'stream' || type === 'none') return type;
  throw new CliError(`${displayText(key)} is not a pulse stream: the key holds a ${type}, not a stream`);
}

/**
 * Checks that `pulse:stream:<name>` is a stream.
 * @throws CliError naming what is there instead, or saying there is none.
 */
export async function requireStream(client: CliRedis, name: string): Promise<string> {
  const key = streamKey(name);
  if ((await streamOrAbsent(client, key)) === 'stream') return key;
  refuseBadName(client, name);
  const hint = name.startsWith(PREFIX) ? ` (give the stream name without the ${PREFIX} prefix)` : '';
  throw new CliError(`no stream ${quoted(name)}: key ${displayText(key)} does not exist${hint}`);
}
