/**
 * Codecs and schemas of typed streams: how an event's value becomes the
 * bytes of its payload (`p`) and back, and what checks it on both ends.
 */

/**
 * Turns event values into payload bytes and back. A typed stream encodes
 * every `add` with it and decodes `event.data` with it.
 */
export interface Codec {
  /**
   * The payload of `value`: bytes, or a string stored as UTF-8. Bytes are
   * copied as soon as it returns, so it may encode into one reused buffer.
   * A throw (of anything) rejects the `add` with `InvalidArgumentError`.
   * Synchronous only: a promise is refused the same way.
   */
  encode(value: unknown): Uint8Array | string;
  /**
   * The value of a payload, or a promise of it (a decompression, a schema
   * registry look-up): a promise is awaited as long as it takes, like a
   * schema that validates asynchronously, so `event.data` then needs
   * `await event.decode()` first (`process()` and `processBatch()` do it
   * before calling the handler). A throw or a rejection (of anything) is a
   * `DecodeError` (dead-lettered with `decode:` under `process()`).
   */
  decode(bytes: Buffer): unknown | Promise<unknown>;
}

/** The codecs built in: `'json'` is UTF-8 JSON (`JSON.stringify` / `JSON.parse`, invalid UTF-8 refused). */
export type CodecName = 'json';

/**
 * A [Standard Schema](https://standardschema.dev) v1 object: what zod,
 * valibot, arktype and others expose as `~standard`. The library depends on
 * none of them: it only calls `validate`, which may answer at once or with a
 * promise.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaProps<Input, Output>;
}

/** The `~standard` property of a {@link StandardSchemaV1}. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  readonly version: 1;
  readonly vendor: string;
  /**
   * Checks a value. A throw, a rejection or an answer that is not a result
   * is an `InvalidArgumentError` on `add` and a `DecodeError` on `data`. A
   * promise must settle within 10 s on `add` (else the add is rejected with
   * `InvalidArgumentError`, nothing added); on `event.decode()` it is awaited
   * as long as it takes.
   */
  readonly validate: (value: unknown) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  /** Only for type inference: never present at run time. */
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

/** What a schema's `validate` answers: the value (perhaps transformed), or the issues. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

/** One problem a schema found. */
export interface StandardSchemaIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The output type of a Standard Schema (what `event.data` holds once validated). */
export type InferSchemaOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : unknown;
