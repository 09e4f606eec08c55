import { InvalidArgumentError } from '../errors.js';
import { checkOptionNames } from './optionNames.js';

/** `nack`'s option names (`NackOptions`; plain lists here: optionLists.ts reads options.ts, whose types read modules that import this one). */
const NACK_OPTIONS = ['delayMs'];
/** `subscribe`'s option names (`SubscribeOptions`). */
const SUBSCRIBE_OPTIONS = ['signal'];

const FORBIDDEN = /[ \0*?[\]]/;

/** A lone surrogate: a UTF-16 code unit that encodes no character on its own. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `String.prototype.isWellFormed` (Node.js 20, ES2024: not in the ES2022 typings this package builds with). */
const nativeWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** True when `s` is valid UTF-16 (no lone surrogate): only then does it reach Redis unchanged. */
export function isWellFormed(s: string): boolean {
  return nativeWellFormed ? nativeWellFormed.call(s) : !LONE_SURROGATE.test(s);
}

/**
 * Rejects a string with a lone surrogate (text sliced at a code unit): sent
 * as UTF-8 it would become U+FFFD, silently another string (two dedupIds
 * the same record, a header or name read back different).
 */
export function checkWellFormed(what: string, s: string): void {
  const problem = wellFormedProblem(what, s);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
}

/** Why `s` cannot be stored as `what` (a lone surrogate), or undefined: the message of {@link checkWellFormed}. */
export function wellFormedProblem(what: string, s: string): string | undefined {
  return isWellFormed(s) ? undefined : `${what} must be well-formed UTF-16 (it has a lone surrogate)`;
}

/**
 * The suffix of Go Pulse's lifecycle record key: `pulse:stream:<x>:lifecycle`
 * is the record (a hash) of stream `<x>` (goLifecycle.ts).
 */
const GO_LIFECYCLE_SUFFIX = ':lifecycle';

/**
 * Stream and sink names: 1 to 512 characters, none of space, NUL, `*`, `?`,
 * `[`, `]`, well-formed. A stream name (any `kind` but `'sink'`, whose keys
 * all sit under the stream's hash tag) must not end in `:lifecycle`: its key
 * would be Go Pulse's lifecycle record of another stream, which this library
 * and Go write for every stream, so one of the two would fail with WRONGTYPE
 * or be skipped without a word. Refused here, before any Redis call.
 */
export function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string') throw new InvalidArgumentError(`${kind} name must be a string`);
  if (name.length === 0) throw new InvalidArgumentError(`${kind} name must not be empty`);
  if (name.length > 512) throw new InvalidArgumentError(`${kind} name must be at most 512 characters`);
  if (FORBIDDEN.test(name)) {
    throw new InvalidArgumentError(`${kind} name ${JSON.stringify(name)} must not contain space, NUL, '*', '?', '[' or ']'`);
  }
  checkWellFormed(`${kind} name`, name);
  if (kind !== 'sink' && name.endsWith(GO_LIFECYCLE_SUFFIX)) {
    throw new InvalidArgumentError(
      `${kind} name ${JSON.stringify(name)} must not end in '${GO_LIFECYCLE_SUFFIX}': its key is Go Pulse's lifecycle record of stream ${JSON.stringify(name.slice(0, -GO_LIFECYCLE_SUFFIX.length))}`,
    );
  }
  return name;
}

/**
 * The longest a Node.js timer can wait: 2^31-1 ms (about 24.8 days). A
 * longer one fires after 1 ms, so options that drive a timer stop there.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A value of the wrong type as a message says it: a number as itself (`-1`,
 * `1.5`, `NaN`), anything else with its type (`string "100"`), so that a
 * numeric string (an option read from an env var or a JSON file) does not
 * read as the valid number it looks like. Long strings are cut.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)}`;
  if (typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  // Objects are not printed: String() throws for some (no prototype), and their text says little.
  return value === null ? 'null' : typeof value;
}

/**
 * A whole number from `min` to `max`, or the default when undefined. `max`
 * defaults to `Number.MAX_SAFE_INTEGER`: beyond it a number is not exact,
 * prints in exponent form ("1e+21") and Redis refuses it, possibly after a
 * script already wrote (an add stored, then rejected).
 */
export function checkInt(option: string, value: unknown, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`${option} must be an integer >= ${min}, got ${describeValue(value)}`);
  }
  if (value > max) throw new InvalidArgumentError(`${option} must be at most ${max}, got ${String(value)}`);
  return value;
}

/** An optional whole number >= min. */
export function checkOptionalInt(option: string, value: unknown, min: number): number | undefined {
  return value === undefined ? undefined : checkInt(option, value, 0, min);
}

export function checkBool(option: string, value: unknown, def: boolean): boolean {
  if (value === undefined) return def;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${option} must be a boolean`);
  return value;
}

const ID = /^(\d+)(?:-(\d+))?$/;

/** The largest value of either part of an entry ID (an unsigned 64-bit integer). */
const MAX_ID_PART = 18446744073709551615n;

/**
 * A Redis stream entry ID (`<ms>-<seq>` or `<ms>`), each part at most
 * 18446744073709551615: Redis rejects anything larger, and a reader or sink
 * left holding such an ID would fail every read.
 */
export function checkId(option: string, id: unknown): string {
  const m = typeof id === 'string' ? ID.exec(id) : null;
  if (m === null || BigInt(m[1] ?? '0') > MAX_ID_PART || BigInt(m[2] ?? '0') > MAX_ID_PART) {
    throw new InvalidArgumentError(
      `${option} must be a stream entry ID like "1700000000000-0" (each part at most ${MAX_ID_PART}), got ${typeof id === 'string' ? JSON.stringify(id) : typeof id}`,
    );
  }
  return id as string;
}

/**
 * An entry ID checked (see {@link checkId}) in the one form Redis answers
 * with: `<ms>-<seq>`, no leading zeros, `-0` when the sequence is left out
 * (as XDEL and XRANGE's end read it). IDs compared as text, or used as both
 * ends of an XRANGE (where a bare `<ms>` covers every sequence of that
 * millisecond), need this form.
 */
export function canonicalId(option: string, id: unknown): string {
  const [ms, seq = '0'] = checkId(option, id).split('-');
  return `${BigInt(ms as string)}-${BigInt(seq)}`;
}

/**
 * Options, when given, must be an object: a string or a number
 * (`addStream(stream, 'oldest')`) would otherwise read as no options at
 * all, silently not what the caller meant.
 */
export function checkOptionsObject(what: string, options: unknown, hint = ''): void {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError(`${what} options must be an object${hint}, got ${options === null ? 'null' : typeof options}`);
  }
}

/** `subscribe()`'s options (of a reader or a sink): an object, with an optional `AbortSignal`. */
export function subscribeSignal(options: unknown): AbortSignal | undefined {
  checkOptionsObject('subscribe', options);
  checkOptionNames('subscribe', options as object | undefined, SUBSCRIBE_OPTIONS);
  return checkSignal('signal', (options as { signal?: unknown } | undefined)?.signal);
}

/**
 * An optional `AbortSignal`. Checked by shape rather than `instanceof`, so
 * that a signal from another realm or a compatible polyfill is accepted.
 */
export function checkSignal(option: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  const s = value as Partial<AbortSignal> | null;
  if (
    typeof value !== 'object' ||
    s === null ||
    typeof s.aborted !== 'boolean' ||
    typeof s.addEventListener !== 'function' ||
    typeof s.removeEventListener !== 'function'
  ) {
    throw new InvalidArgumentError(`${option} must be an AbortSignal, got ${value === null ? 'null' : typeof value}`);
  }
  return value as AbortSignal;
}

/** A full entry ID, `<ms>-<seq>`, each part at most 20 digits (range checked below). */
const FULL_ID = /^\d{1,20}-\d{1,20}$/;
const MAX_PART = '18446744073709551615';

/**
 * True when both parts of a full ID fit 64 bits, as Redis requires. Cheap on
 * the ack path: IDs of today (~15 characters) have no 20-digit part.
 */
function inRange(id: string): boolean {
  if (id.length < 22) return true;
  const dash = id.indexOf('-');
  const ms = id.slice(0, dash);
  const seq = id.slice(dash + 1);
  return (ms.length < 20 || ms <= MAX_PART) && (seq.length < 20 || seq <= MAX_PART);
}

/**
 * What `ack` needs of an event: an object with a full, in-range entry ID and
 * a stream name. A bad one is rejected before it joins a merged XACK, where
 * Redis would fail every other ack of that stream and tick with it.
 */
export function checkAckable(event: unknown): { id: string; streamName: string } {
  if (typeof event !== 'object' || event === null) {
    throw new InvalidArgumentError(`ack takes events delivered by the sink, got ${event === null ? 'null' : typeof event}`);
  }
  const { id, streamName } = event as { id?: unknown; streamName?: unknown };
  if (typeof id !== 'string' || !FULL_ID.test(id) || !inRange(id)) {
    throw new InvalidArgumentError(`ack: event id must be a stream entry ID like "1700000000000-0", got ${JSON.stringify(id)}`);
  }
  if (typeof streamName !== 'string' || streamName.length === 0) {
    throw new InvalidArgumentError(`ack: event ${id} has no stream name`);
  }
  return { id, streamName };
}

/**
 * A sink reading its own dead-letter stream would dead-letter into what it
 * reads: a handler that always fails would add to the stream forever.
 */
export function checkDeadName(deadLetterStream: string | undefined, streamName: string): void {
  if (deadLetterStream === streamName)
    throw new InvalidArgumentError(`deadLetterStream must not be a stream the sink reads (${streamName})`);
}

/**
 * A `noAck` sink's events are acked as it reads them (`XREADGROUP NOACK`):
 * none is ever pending, so none is redelivered, and `maxDeliveries` could
 * never dead-letter one. Accepting it would promise what cannot happen.
 */
export function checkNoAck(settings: { readonly noAck: boolean; readonly maxDeliveries: number | undefined }): void {
  if (settings.noAck && settings.maxDeliveries !== undefined) {
    throw new InvalidArgumentError(
      'maxDeliveries does not apply to a noAck sink: its events are acked as read and never redelivered',
    );
  }
}

/**
 * The delay of `event.nack(options)`: `delayMs`, default the grace period.
 * Refused on a `noAck` sink: resolving would say the event comes back, and it
 * was acked as read.
 */
export function nackDelay(settings: { readonly noAck: boolean; readonly graceMs: number }, options: unknown): number {
  if (settings.noAck) throw new InvalidArgumentError('nack: events of a noAck sink are acked as read: none is redelivered');
  checkOptionsObject('nack', options, ', e.g. { delayMs }');
  checkOptionNames('nack', options as object | undefined, NACK_OPTIONS);
  return checkInt('delayMs', (options as { delayMs?: unknown } | undefined)?.delayMs, settings.graceMs, 0);
}
