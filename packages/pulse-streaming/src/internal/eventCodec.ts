/**
 * A typed stream's codec and schemas at work: validating and encoding the
 * values of `add`, decoding and validating payloads into `event.data`.
 * Schemas may validate at once or with a promise (Standard Schema allows
 * both): each step stays synchronous when the schema is, so adds of one tick
 * still merge and decoding costs no extra turn of the event loop.
 */
import type { Codec, StandardSchemaIssue, StandardSchemaResult, StandardSchemaV1 } from '../codec.js';
import { DecodeError, InvalidArgumentError } from '../errors.js';

/** Refuses invalid UTF-8 instead of replacing it: bad bytes are a decode failure, not a changed value. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The built-in `'json'` codec. */
const jsonCodec: Codec = {
  encode(value: unknown): string {
    const text = JSON.stringify(value);
    // undefined, a function or a symbol has no JSON form: stored, it would decode as something else.
    if (text === undefined) throw new TypeError(`a value of type ${typeof value} has no JSON form`);
    return text;
  },
  decode(bytes: Buffer): unknown {
    return JSON.parse(utf8.decode(bytes));
  },
};

/** Most characters of schema issues kept in an error message (and so in a dead letter's reason). */
const MAX_ISSUES_TEXT = 500;

/** A decoded value; a promise of one when the schema validates asynchronously. */
export type Decoded = { readonly value: unknown } | Promise<{ readonly value: unknown }>;

/** Stream options `codec` and `schemas`, checked. */
export class EventCodec {
  readonly #codec: Codec;
  readonly #schemas: ReadonlyMap<string, StandardSchemaV1>;

  private constructor(codec: Codec, schemas: ReadonlyMap<string, StandardSchemaV1>) {
    this.#codec = codec;
    this.#schemas = schemas;
  }

  /**
   * The codec of a stream's options, or undefined for an untyped stream.
   * `schemas` without a `codec` means JSON.
   * @throws InvalidArgumentError for a codec or schema of the wrong shape.
   */
  static of(codec: unknown, schemas: unknown): EventCodec | undefined {
    if (codec === undefined && schemas === undefined) return undefined;
    let c: Codec;
    if (codec === undefined || codec === 'json') c = jsonCodec;
    else if (
      typeof codec === 'object' &&
      codec !== null &&
      typeof (codec as Partial<Codec>).encode === 'function' &&
      typeof (codec as Partial<Codec>).decode === 'function'
    )
      c = codec as Codec;
    else throw new InvalidArgumentError(`codec must be 'json' or an object with encode and decode functions`);
    const map = new Map<string, StandardSchemaV1>();
    if (schemas !== undefined) {
      if (typeof schemas !== 'object' || schemas === null) throw new InvalidArgumentError('schemas must be an object');
      for (const [name, schema] of Object.entries(schemas)) {
        const std = (schema as Partial<StandardSchemaV1> | null)?.['~standard'];
        if (typeof std !== 'object' || std === null || typeof std.validate !== 'function') {
          throw new InvalidArgumentError(
            `schemas[${JSON.stringify(name)}] must be a Standard Schema (an object with ~standard.validate)`,
          );
        }
        map.set(name, schema as StandardSchemaV1);
      }
    }
    return new EventCodec(c, map);
  }

  /**
   * The payload of an `add`: the value checked by its event name's schema,
   * then encoded (the value as given, not the schema's output, so that
   * decoding, which validates again, sees what the producer meant).
   * @throws InvalidArgumentError (or rejects with it, for an asynchronous schema) when the value is refused.
   */
  encode(eventName: string, value: unknown): Buffer | string | Promise<Buffer | string> {
    const schema = this.#schemas.get(eventName);
    if (schema === undefined) return this.#encode(eventName, value);
    const result = validate(schema, value);
    const check = (r: StandardSchemaResult<unknown>): Buffer | string => {
      if (r.issues !== undefined) {
        throw new InvalidArgumentError(`add ${eventName}: the schema refused the payload: ${issuesText(r.issues)}`);
      }
      return this.#encode(eventName, value);
    };
    if (isThenable(result)) {
      return Promise.resolve(result).then(check, (err: unknown) => {
        throw new InvalidArgumentError(`add ${eventName}: the schema failed: ${String(err)}`, { cause: err });
      });
    }
    return check(result);
  }

  #encode(eventName: string, value: unknown): Buffer | string {
    let out: unknown;
    try {
      out = this.#codec.encode(value);
    } catch (err) {
      throw new InvalidArgumentError(`add ${eventName}: the codec could not encode the payload: ${String(err)}`, {
        cause: err,
      });
    }
    if (typeof out === 'string' || Buffer.isBuffer(out)) return out;
    if (out instanceof Uint8Array) return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    throw new InvalidArgumentError(`add ${eventName}: the codec's encode must return a Uint8Array or a string`);
  }

  /**
   * The value of a payload, validated by its event name's schema.
   * @throws DecodeError (or rejects with it, for an asynchronous schema).
   */
  decode(eventName: string, id: string, payload: Buffer): Decoded {
    let value: unknown;
    try {
      value = this.#codec.decode(payload);
    } catch (err) {
      throw new DecodeError(`event ${id} (${eventName}): the codec could not decode the payload: ${String(err)}`, {
        cause: err,
        eventName,
        eventId: id,
      });
    }
    const schema = this.#schemas.get(eventName);
    if (schema === undefined) return { value };
    let result: ReturnType<typeof validate>;
    try {
      result = validate(schema, value);
    } catch (err) {
      throw schemaFailed(eventName, id, err);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (r) => checked(r, eventName, id),
        (err: unknown) => {
          throw schemaFailed(eventName, id, err);
        },
      );
    }
    return checked(result, eventName, id);
  }
}

function validate(
  schema: StandardSchemaV1,
  value: unknown,
): StandardSchemaResult<unknown> | PromiseLike<StandardSchemaResult<unknown>> {
  return schema['~standard'].validate(value);
}

/** A promise, or another realm's or library's thenable: validation results are plain objects. */
function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}

function checked(r: StandardSchemaResult<unknown>, eventName: string, id: string): { readonly value: unknown } {
  if (r.issues !== undefined) {
    throw new DecodeError(`event ${id} (${eventName}): the schema refused the payload: ${issuesText(r.issues)}`, {
      eventName,
      eventId: id,
      issues: r.issues,
    });
  }
  return r;
}

function schemaFailed(eventName: string, id: string, err: unknown): DecodeError {
  return new DecodeError(`event ${id} (${eventName}): the schema failed: ${String(err)}`, {
    cause: err,
    eventName,
    eventId: id,
  });
}

/** `path: message; ...`, cut to a length a log line or a dead letter's reason can carry. */
export function issuesText(issues: ReadonlyArray<StandardSchemaIssue>): string {
  const text = issues
    .map((i) => {
      const path = (i.path ?? []).map((p) => String(typeof p === 'object' && p !== null ? p.key : p)).join('.');
      return path === '' ? i.message : `${path}: ${i.message}`;
    })
    .join('; ');
  return text.length > MAX_ISSUES_TEXT ? `${text.slice(0, MAX_ISSUES_TEXT)}...` : text;
}
