/**
 * A typed stream's codec and schemas at work: validating and encoding the
 * values of `add`, decoding and validating payloads into `event.data`.
 * Schemas may validate at once or with a promise (Standard Schema allows
 * both), and a codec may decode with a promise: each step stays synchronous
 * when the codec and schema are, so adds of one tick still merge and
 * decoding costs no extra turn of the event loop.
 */
import type { Codec, StandardSchemaIssue, StandardSchemaResult, StandardSchemaV1 } from '../codec.js';
import { DecodeError, InvalidArgumentError } from '../errors.js';
import { isRecord } from './headers.js';
import { errorText } from './redisErrors.js';
import { dropThenable, isThenable } from './thenable.js';

/**
 * @internal How long an `add` waits for a schema that validates
 * asynchronously: one that never answers must not hold the add, and every
 * later add of the stream behind it (they keep their order), forever.
 * Mutable for tests only.
 */
export const schemaLimits = { answerMs: 10_000 };

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

/** A decoded value; a promise of one when the codec decodes or the schema validates asynchronously. */
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
      // A Map's entries are not its properties: read as a record, every add would go unvalidated.
      if (!isRecord(schemas)) throw new InvalidArgumentError('schemas must be a plain object of event names to schemas');
      let entries: [string, unknown][];
      try {
        entries = Object.entries(schemas);
      } catch (err) {
        throw new InvalidArgumentError(`schemas: reading them failed: ${errorText(err)}`, { cause: err });
      }
      for (const [name, schema] of entries) {
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
   * decoding, which validates again, sees what the producer meant). The
   * bytes are those at the call: a codec's `Uint8Array` is copied (it may
   * reuse one scratch buffer), a string is immutable. With a schema that
   * validates asynchronously the value is encoded at the call, before the
   * schema answers (a snapshot: a change to the value after `add()` is not
   * stored), and the add waits at most {@link schemaLimits}`.answerMs` for
   * the answer.
   * @throws InvalidArgumentError (or rejects with it, for an asynchronous
   * schema) when the value is refused, the schema throws, answers something
   * that is not a result or does not answer in time, or the codec fails.
   */
  encode(eventName: string, value: unknown): Buffer | string | Promise<Buffer | string> {
    const schema = this.#schemas.get(eventName);
    if (schema === undefined) return this.#encode(eventName, value);
    let result: ReturnType<typeof validate>;
    try {
      result = validate(schema, value);
    } catch (err) {
      throw new InvalidArgumentError(`add ${eventName}: the schema failed: ${errorText(err)}`, { cause: err });
    }
    if (!isThenable(result)) {
      refusedOnAdd(eventName, result);
      return this.#encode(eventName, value);
    }
    // Snapshot now: the caller may change its object before the schema answers.
    let encoded: { bytes: Buffer | string } | { err: unknown };
    try {
      encoded = { bytes: this.#encode(eventName, value) };
    } catch (err) {
      encoded = { err };
    }
    return answered(eventName, result).then((r) => {
      // The schema's word first: its issues say more than a codec's failure on a value it refuses.
      refusedOnAdd(eventName, r);
      if ('err' in encoded) throw encoded.err;
      return encoded.bytes;
    });
  }

  #encode(eventName: string, value: unknown): Buffer | string {
    let out: unknown;
    try {
      out = this.#codec.encode(value);
    } catch (err) {
      throw new InvalidArgumentError(`add ${eventName}: the codec could not encode the payload: ${errorText(err)}`, {
        cause: err,
      });
    }
    if (typeof out === 'string') return out;
    // A copy: a codec may encode into one reused buffer, and the bytes stored are those of this call.
    if (out instanceof Uint8Array) return Buffer.from(out);
    if (isThenable(out)) {
      dropThenable(out);
      throw new InvalidArgumentError(`add ${eventName}: the codec's encode must be synchronous (it returned a promise)`);
    }
    throw new InvalidArgumentError(`add ${eventName}: the codec's encode must return a Uint8Array or a string`);
  }

  /**
   * The value of a payload, validated by its event name's schema. A codec
   * whose `decode` answers a promise (or another thenable) is awaited, then
   * validated: a promise of the outcome, like an asynchronous schema's.
   * @throws DecodeError (or rejects with it, when decoding or the schema is
   * asynchronous).
   */
  decode(eventName: string, id: string, payload: Buffer): Decoded {
    let value: unknown;
    try {
      value = this.#codec.decode(payload);
      // Taken as is, a promise would be handed over as `data` (and its rejection acked unseen, never dead-lettered).
      if (isThenable(value)) {
        return Promise.resolve(value).then(
          (v: unknown) => this.#validated(eventName, id, v),
          (err: unknown) => {
            throw codecFailed(eventName, id, err);
          },
        );
      }
    } catch (err) {
      throw codecFailed(eventName, id, err);
    }
    return this.#validated(eventName, id, value);
  }

  /** `value` checked by the schema of `eventName`, if it has one. */
  #validated(eventName: string, id: string, value: unknown): Decoded {
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

/** Why `r` is not a Standard Schema result (undefined when it is one). */
function notAResult(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null) return `validate answered ${r === null ? 'null' : typeof r}, not a result`;
  const issues = (r as { issues?: unknown }).issues;
  if (issues !== undefined && !Array.isArray(issues)) return 'validate answered issues that are not an array';
  return undefined;
}

/** Throws the `add` error for a result that refuses the value or is not a result. */
function refusedOnAdd(eventName: string, r: StandardSchemaResult<unknown>): void {
  const bad = notAResult(r);
  if (bad !== undefined) throw new InvalidArgumentError(`add ${eventName}: the schema failed: ${bad}`);
  if (r.issues !== undefined) {
    throw new InvalidArgumentError(`add ${eventName}: the schema refused the payload: ${issuesText(r.issues)}`);
  }
}

/** The answer of an asynchronous schema on `add`, or InvalidArgumentError once it failed or took schemaLimits.answerMs. */
function answered(eventName: string, result: PromiseLike<StandardSchemaResult<unknown>>): Promise<StandardSchemaResult<unknown>> {
  const ms = schemaLimits.answerMs;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new InvalidArgumentError(`add ${eventName}: the schema did not answer within ${ms} ms: nothing added`)),
      ms,
    );
  });
  const answer = Promise.resolve(result).then(
    (r) => r,
    (err: unknown) => {
      throw new InvalidArgumentError(`add ${eventName}: the schema failed: ${errorText(err)}`, { cause: err });
    },
  );
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

function checked(r: StandardSchemaResult<unknown>, eventName: string, id: string): { readonly value: unknown } {
  const bad = notAResult(r);
  if (bad !== undefined) throw schemaFailed(eventName, id, new TypeError(bad));
  if (r.issues !== undefined) {
    throw new DecodeError(`event ${id} (${eventName}): the schema refused the payload: ${issuesText(r.issues)}`, {
      eventName,
      eventId: id,
      issues: r.issues,
    });
  }
  return r;
}

function codecFailed(eventName: string, id: string, err: unknown): DecodeError {
  return new DecodeError(`event ${id} (${eventName}): the codec could not decode the payload: ${errorText(err)}`, {
    cause: err,
    eventName,
    eventId: id,
  });
}

function schemaFailed(eventName: string, id: string, err: unknown): DecodeError {
  return new DecodeError(`event ${id} (${eventName}): the schema failed: ${errorText(err)}`, {
    cause: err,
    eventName,
    eventId: id,
  });
}

/** `path: message; ...`, cut to a length a log line or a dead letter's reason can carry. */
export function issuesText(issues: ReadonlyArray<StandardSchemaIssue>): string {
  const text = issues
    .map((i) => {
      // errorText, not String(): a schema's message or path key may be a value String() throws on.
      const path = (i?.path ?? []).map((p) => errorText(typeof p === 'object' && p !== null ? p.key : p)).join('.');
      const message = errorText(i?.message);
      return path === '' ? message : `${path}: ${message}`;
    })
    .join('; ');
  return text.length > MAX_ISSUES_TEXT ? `${text.slice(0, MAX_ISSUES_TEXT)}...` : text;
}
