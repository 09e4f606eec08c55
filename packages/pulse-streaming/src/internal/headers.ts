/**
 * Event headers on the wire (SEMANTICS.md section 8): one entry field per
 * header, `h.<name>`, its value the header's value as UTF-8. An event without
 * headers writes no such field, so its entry stays exactly `n`, `p` (, `t`)
 * as Go Pulse writes it.
 */
import { InvalidArgumentError } from '../errors.js';
import { errorText } from './redisErrors.js';
import { wellFormedProblem } from './validate.js';

/** Prefix of the entry field of each header. */
export const HEADER_PREFIX = 'h.';

/** The headers of an event that has none: one shared frozen object. */
export const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

const HEADER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Most headers a caller passes on one event. Not in the contract's wording,
 * but an entry with thousands of fields is a mistake, and the add script
 * builds each XADD with `unpack`, which Lua caps at a few thousand values.
 */
export const MAX_HEADERS = 256;

/**
 * Most headers instrumentation (a `pulse-streaming:add` subscriber: the
 * trace context, `traceparent` and `tracestate`, or a propagator's other
 * fields) may add beyond the caller's: not counted against
 * {@link MAX_HEADERS}, so that an add that succeeds untraced succeeds traced.
 */
export const MAX_INJECTED_HEADERS = 32;

/**
 * The `h.<name>`, value pairs of `headers`, checked: names of 1 to 64
 * characters of `[A-Za-z0-9_.-]`, string values, at most `max` headers.
 * Empty (no fields) for undefined or `{}`. A Map or a fetch `Headers` is
 * refused (see {@link isRecord}), and so is a getter that throws.
 * @param max most headers: `stream.add` checks the caller's against
 * {@link MAX_HEADERS}; the default, that plus {@link MAX_INJECTED_HEADERS},
 * bounds a traced add's, which include what instrumentation added.
 * @throws InvalidArgumentError for anything else.
 */
export function headerFields(headers: unknown, max: number = MAX_HEADERS + MAX_INJECTED_HEADERS): string[] {
  if (headers === undefined) return [];
  if (!isRecord(headers)) {
    // A Map or a fetch Headers has no own properties: read as a record, its headers would vanish silently.
    throw new InvalidArgumentError(
      'headers must be a plain object of header names to string values (for a Map or Headers: Object.fromEntries(headers))',
    );
  }
  const names = Object.keys(headers);
  const problem = hiddenPropertiesProblem(headers, names.length);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  const fields: string[] = [];
  for (const name of names) {
    const badName = headerNameProblem(name);
    if (badName !== undefined) throw new InvalidArgumentError(badName);
    let value: unknown;
    try {
      value = (headers as Record<string, unknown>)[name];
    } catch (err) {
      throw new InvalidArgumentError(`header ${name}: reading its value failed: ${errorText(err)}`, { cause: err });
    }
    const badValue = headerValueProblem(name, value);
    if (badValue !== undefined) throw new InvalidArgumentError(badValue);
    fields.push(HEADER_PREFIX + name, value as string);
  }
  if (fields.length > 2 * max) {
    throw new InvalidArgumentError(
      max === MAX_HEADERS
        ? `an event carries at most ${MAX_HEADERS} headers`
        : `an event carries at most ${MAX_HEADERS} headers, and instrumentation adds at most ${MAX_INJECTED_HEADERS} more`,
    );
  }
  return fields;
}

/**
 * Why the record `headers` has properties `Object.keys` does not list, which
 * would not be stored (outside trial): a class instance or an object with a
 * prototype of its own (inherited properties), a symbol-keyed or a
 * non-enumerable property. A plain object of any realm (its prototype's own
 * prototype is null) or one without a prototype passes. `listed`: how many
 * `Object.keys` lists.
 */
function hiddenPropertiesProblem(headers: object, listed: number): string | undefined {
  const proto: unknown = Object.getPrototypeOf(headers);
  if (proto !== null && Object.getPrototypeOf(proto) !== null)
    return 'headers must be a plain object ({ name: value }): inherited properties (a class instance, Object.create(...)) would not be stored';
  if (Object.getOwnPropertySymbols(headers).length > 0)
    return 'headers must be a plain object with string names: a symbol-keyed property would not be stored';
  if (Object.getOwnPropertyNames(headers).length !== listed)
    return 'headers must be a plain object of enumerable properties: a non-enumerable one would not be stored';
  return undefined;
}

/**
 * Why `name` and `value` cannot be a header of an event, or undefined when
 * they can: the rules {@link headerFields} applies to each header, for a
 * `pulse-streaming:add` subscriber that must leave out what it cannot write
 * rather than fail the add (pulse-streaming/otel and its propagator's fields).
 */
export function headerProblem(name: string, value: unknown): string | undefined {
  return headerNameProblem(name) ?? headerValueProblem(name, value);
}

/** Why `name` cannot be a header name (1 to 64 characters of `[A-Za-z0-9_.-]`), or undefined. */
function headerNameProblem(name: string): string | undefined {
  return HEADER_NAME.test(name) ? undefined : `header name ${JSON.stringify(name)} must be 1 to 64 characters of [A-Za-z0-9_.-]`;
}

/**
 * Why `value` cannot be the value of header `name` (a string, well-formed:
 * a lone surrogate would be read back as U+FFFD, another string), or undefined.
 */
function headerValueProblem(name: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return `header ${name} must have a string value, got ${typeof value}`;
  return wellFormedProblem(`header ${name}`, value);
}

/**
 * A plain object (of any realm, or a class instance's own fields): not an
 * array, a Map, a fetch `Headers` or another iterable, whose entries are not
 * its own properties.
 */
export function isRecord(v: unknown): v is object {
  return (
    typeof v === 'object' &&
    v !== null &&
    Object.prototype.toString.call(v) === '[object Object]' &&
    typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function'
  );
}

/**
 * The headers object of checked `fields` (from {@link headerFields}): a
 * copy taken at the call, which the caller's later changes to its own
 * object do not reach.
 */
export function headersOf(fields: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2)
    setHeader(headers, (fields[i] as string).slice(HEADER_PREFIX.length), fields[i + 1] as string);
  return headers;
}

/**
 * Sets a header read from an entry. `defineProperty`, so that a header named
 * `__proto__` (a valid name) is an own property like any other instead of
 * the object's prototype.
 */
export function setHeader(headers: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  else headers[name] = value;
}
