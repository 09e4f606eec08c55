import { Stream } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { printJson } from '../format.js';
import { streamOrAbsent } from '../streamChecks.js';

/** Options of `add`. */
export interface AddCommandOptions {
  readonly topic?: string;
  /** Trim the stream to about this many entries; 0 (the default) trims nothing. */
  readonly maxLen?: number;
  /** With payload `-`: keep stdin byte for byte instead of dropping one trailing newline. */
  readonly keepNewline?: boolean;
  /** `--header name=value`, repeatable: the event's headers (checked by the library, as `add` checks them). */
  readonly header?: readonly string[];
  /** `--dedup-id`: add nothing when an add with this ID reached the stream within its dedup window. */
  readonly dedupId?: string;
  /**
   * `--dedup-window-ms`: the window of `--dedup-id`. The library's default
   * (2 minutes) is enough on a stream whose applications use a longer one:
   * the stream's dedup records keep the largest window they were written
   * with, so this add neither shortens theirs nor remembers its own less.
   * @defaultValue 120000 (the library's `dedupWindowMs` default)
   */
  readonly dedupWindowMs?: number;
}

/**
 * `--header name=value` options as the headers of `add`: split at the first
 * `=`, so a value may hold `=` (base64, tracestate). Names and values are
 * checked by the library, with its own message.
 * @throws CliError (exit code 2) for an option without `=` or a name given twice
 */
export function parseHeaders(options: readonly string[] | undefined): Record<string, string> | undefined {
  if (options === undefined || options.length === 0) return undefined;
  const headers: Record<string, string> = {};
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq < 0) throw new CliError(`--header takes name=value, got ${JSON.stringify(option)}`, 2);
    const name = option.slice(0, eq);
    if (Object.hasOwn(headers, name)) throw new CliError(`--header ${JSON.stringify(name)} given twice`, 2);
    // Defined, not assigned: `headers.__proto__ = v` would hit the prototype setter and drop a valid
    // header name in silence (outside review AI).
    Object.defineProperty(headers, name, { value: option.slice(eq + 1), enumerable: true, writable: true, configurable: true });
  }
  return headers;
}

/**
 * Stdin without the one trailing newline (`\n` or `\r\n`) that `echo`, a
 * heredoc or an editor puts at the end: `echo '{"id":1}' | ... -` stores
 * `{"id":1}`. Only one, so a payload that really ends with blank lines keeps them.
 */
export function withoutTrailingNewline(bytes: Buffer): Buffer {
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0a) {
    const cut = bytes.length > 1 && bytes[bytes.length - 2] === 0x0d ? 2 : 1;
    return bytes.subarray(0, bytes.length - cut);
  }
  return bytes;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}

/** `add <stream> <event> <payload>`: appends one event (payload `-` reads stdin) and prints its ID. */
export async function addCommand(
  ctx: CommandContext,
  name: string,
  eventName: string,
  payload: string,
  options: AddCommandOptions,
): Promise<number> {
  // Bad usage is said before connecting (exit 2), as for the other options.
  const headers = parseHeaders(options.header);
  if (options.dedupWindowMs !== undefined && options.dedupId === undefined)
    throw new CliError('--dedup-window-ms is the window of --dedup-id: give --dedup-id too', 2);
  const { client } = await ctx.connect('add');
  const stream = new Stream(name, client, {
    maxLen: options.maxLen ?? 0,
    ...(options.dedupWindowMs !== undefined ? { dedupWindowMs: options.dedupWindowMs } : {}),
  });
  await streamOrAbsent(client, streamKey(name));
  let body: Buffer | string = payload;
  if (payload === '-') {
    const input = await readStdin();
    body = options.keepNewline === true ? input : withoutTrailingNewline(input);
  }
  const id = await stream.add(eventName, body, {
    ...(options.topic ? { topic: options.topic } : {}),
    ...(headers ? { headers } : {}),
    ...(options.dedupId !== undefined ? { dedupId: options.dedupId } : {}),
  });
  if (ctx.json) printJson({ stream: name, id });
  else process.stdout.write(`${id}\n`);
  return 0;
}
