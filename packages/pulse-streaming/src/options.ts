import type { Codec, CodecName, StandardSchemaV1 } from './codec.js';
import type { EventMap, EventOf, SinkEvent, Untyped } from './event.js';
import type { Logger } from './logger.js';

/**
 * Where a reader's or new sink's cursor starts:
 * - `'newest'`: after the last entry in the stream when the reader or sink is created;
 * - `'oldest'`: at the oldest entry still in the stream;
 * - a `Date`: at the first entry added on or after that time (an entry `<ms>-0` included),
 *   on Redis's clock, as entry IDs are: a date more than a second ahead of it is said in a
 *   warning (code `PULSE_START_AHEAD_OF_REDIS` without a logger), as what Redis adds before its
 *   clock gets there is skipped;
 * - `{ after: id }`: at the first entry whose ID is greater than `id`.
 */
export type StartAt = 'newest' | 'oldest' | Date | { after: string };

declare const forwardedOnly: unique symbol;

/**
 * Options of {@link Stream}. `Events` is the stream's event map (see
 * {@link StreamOptions.schemas}); an untyped stream has none. An interface,
 * so that an app can extend it with its own settings
 * (`interface OrderStreamOptions extends StreamOptions<OrderEvents> { redisUrl: string }`).
 * With an event map as type argument the constructor also requires `codec`
 * or `schemas` (see {@link StreamArgs}); this type does not, so that it can
 * be extended and forwarded by generic code.
 */
export interface StreamOptions<Events extends EventMap = Untyped> {
  /**
   * Approximate maximum number of entries (`XADD MAXLEN ~`); 0 disables trimming.
   * At most `Number.MAX_SAFE_INTEGER`, as every whole-number option (larger
   * ones are not exact and Redis refuses them): an `InvalidArgumentError` otherwise.
   * @defaultValue 1000
   */
  maxLen?: number | undefined;
  /**
   * pino-compatible logger for warnings and retries. Without one, nothing is
   * logged, except that events readers and sinks find lost (trimmed or
   * deleted before they were handled) are reported as `PulseWarning` process
   * warnings, at most once a minute per reader or sink, with the count (what
   * a minute held back is said at its end, or at `close()`), and what else
   * must not be silent (a start ahead of Redis's clock, a jump of it). A
   * logger that throws or rejects never breaks delivery: its failure is
   * swallowed and said once, as a `PulseWarning` with code `PULSE_LOGGER_FAILED`.
   * @defaultValue a silent logger
   */
  logger?: Logger | undefined;
  /**
   * Expiry of the stream key in milliseconds, set once when the key is created.
   * At most `Number.MAX_SAFE_INTEGER` (about 285,000 years), which Redis takes
   * as an expiry; anything larger is an `InvalidArgumentError`.
   * @defaultValue none
   */
  ttlMs?: number | undefined;
  /**
   * With `ttlMs`: refresh the expiry on every `add`.
   * @defaultValue false
   */
  slidingTtl?: boolean | undefined;
  /**
   * What trimming to `maxLen` may remove:
   * - `'limits'`: the oldest entries, read or not (`XADD MAXLEN ~`);
   * - `'interest'`: only entries every sink (consumer group) of the stream
   *   has read and acked; `maxLen` applies to those. Readers are not counted.
   *   Trimming is then done by a script that finds the sinks' oldest pending
   *   or unread entry: in every call of merged adds, and in one lone add in
   *   50 to the stream in the process (the others are plain XADDs that do
   *   not trim; a process making only a few adds, with one of them in 50 on
   *   average), so the stream may pass maxLen by a little more than with
   *   'limits'. Its cost:
   *   `npm run bench -- --cases retention`.
   * @defaultValue 'limits'
   */
  retention?: Retention | undefined;
  /**
   * How long an add's `dedupId` is remembered (see {@link AddOptions.dedupId}),
   * in milliseconds from its first add; an integer from 1 to
   * `Number.MAX_SAFE_INTEGER` (about 285,000 years), which Redis takes as an
   * expiry. Anything larger is an `InvalidArgumentError` (it used to make
   * every add with a `dedupId` store its event, then reject). Instances with
   * different windows on one stream (the CLI's `add --dedup-id` among them)
   * share the largest, so a shorter one never cuts another's records short
   * (README "Idempotent publish").
   * @defaultValue 120000
   */
  dedupWindowMs?: number | undefined;
  /**
   * Makes the stream typed: `add(name, value)` encodes `value` with this
   * codec (after its schema, if any, accepted it) and `event.data` decodes
   * the payload with it. `'json'` is UTF-8 JSON; a {@link Codec} is any
   * `{ encode, decode }` pair. Without a codec (and without `schemas`) the
   * stream is untyped: payloads are bytes or strings, stored as given.
   * Give the event map as the type argument (`new Stream<OrderEvents>(...)`)
   * or let it be inferred from `schemas`.
   * @defaultValue none (untyped); `'json'` when `schemas` is set
   */
  codec?: CodecName | Codec | undefined;
  /**
   * Per event name, a [Standard Schema](https://standardschema.dev) v1
   * object (zod, valibot, arktype, ...). `add` validates the value and
   * rejects with `InvalidArgumentError` when the schema refuses it (nothing
   * is added); `event.data` validates the decoded value (a `DecodeError`
   * when refused) and holds the schema's output. Schemas may validate
   * asynchronously. Event names without a schema are encoded and decoded
   * without checks. `add` stores the value as given (the schema's input) and
   * `event.data` is the schema's output, but `add` is typed with the output:
   * with a schema that transforms (zod `.transform`, valibot `v.transform`)
   * the input it accepts needs a cast (known limitation). The schema checks
   * the value given to `add`, not its encoded form: with `'json'`, a value
   * it accepts whose JSON form it refuses (a `Date` for `z.date()`, `NaN`)
   * is stored, then dead-lettered by every consumer; use a schema that
   * accepts the JSON form too (`z.coerce.date()`, `z.string().datetime()`).
   * @defaultValue none
   */
  schemas?: SchemasOf<Events> | undefined;
  /**
   * Never set: no value has this key, whose symbol is not exported. Only
   * {@link ForwardedStreamOptions} reads it, to tell a type parameter from
   * a concrete event map.
   * @hidden
   */
  readonly [forwardedOnly]?: never;
}

/** A typed stream's `codec` (see {@link StreamOptions.codec}). */
export interface WithCodec {
  /** The codec of the stream's events. */
  codec: CodecName | Codec;
}

/** A typed stream's `schemas` (see {@link StreamOptions.schemas}); the codec is then `'json'` unless given. */
export interface WithSchemas<Events extends EventMap> {
  /** The schemas of the stream's events. */
  schemas: SchemasOf<Events>;
}

/**
 * The options of a typed stream (an event map as type argument): `codec` or
 * `schemas` required. The type for a helper that takes a typed stream's
 * options and creates the stream with a concrete map
 * (`function orders(options: TypedStreamOptions<OrderEvents>) { return new Stream<OrderEvents>('orders', redis, options) }`):
 * a `StreamOptions<OrderEvents>` does not guarantee either, and is refused there.
 */
export type TypedStreamOptions<Events extends EventMap> = StreamOptions<Events> & (WithCodec | WithSchemas<Events>);

/**
 * The options argument of {@link Stream}'s constructor for an untyped stream
 * or a concrete event map: optional on an untyped stream; required on a typed
 * one (`new Stream<OrderEvents>(...)`), with `codec` or `schemas`. Without
 * either such a stream would be untyped at run time (`add` refuses the
 * values, `event.data` is the payload's bytes) while typed at compile time.
 */
export type StreamArgs<Events extends EventMap = Untyped> = [Events] extends [Untyped]
  ? [options?: StreamOptions<Events> | undefined]
  : [options: TypedStreamOptions<Events>];

/**
 * What the constructor's last overload takes, for generic code whose event
 * map is still a type parameter (`new Stream<E>(name, redis, options)` in a
 * factory taking `options?: StreamOptions<E>`): there the rule of
 * {@link StreamArgs} cannot be decided, and the options are taken as they
 * are. Generic code trades that check for compatibility; the caller's own
 * `new Stream<OrderEvents>(...)` keeps it.
 *
 * For a type parameter `E`, `StreamOptions<E>` (or an interface extending it)
 * is assignable to this mapped type (its keys are a subset of the source's and
 * each property is the source's own); for a concrete event map it resolves to
 * a required property whose key no value can have, so that concrete maps
 * never reach this overload with an object (an explicit `undefined` does,
 * and makes an untyped stream: known limitation).
 */
export type ForwardedStreamOptions<Events extends EventMap> = {
  [Key in [Events] extends [Untyped] ? typeof forwardedOnly : typeof forwardedOnly]: StreamOptions<Events>[Key];
};

/** The `schemas` option of a stream with event map `Events`: each schema's output is its event's type. */
export type SchemasOf<Events extends EventMap> = {
  readonly [Name in keyof Events]?: StandardSchemaV1<unknown, Events[Name]>;
};

/** See {@link StreamOptions.retention}. */
export type Retention = 'limits' | 'interest';

/** Options of {@link Stream.add}. */
export interface AddOptions {
  /**
   * Topic of the event, stored in field `t`; an empty one is none (as in Go
   * Pulse). Well-formed UTF-16, as the event name, header values and
   * `dedupId`: a lone surrogate, which UTF-8 would turn into U+FFFD, is an
   * `InvalidArgumentError`.
   * @defaultValue none
   */
  topic?: string | undefined;
  /** Add nothing (and resolve to `undefined`) when the stream key does not exist. @defaultValue false */
  onlyIfStreamExists?: boolean | undefined;
  /**
   * Headers of the event (`event.headers` on the consumer side), stored as
   * fields `h.<name>`. Names are 1 to 64 characters of `[A-Za-z0-9_.-]`,
   * values well-formed strings (no lone surrogate), at most 256 headers (the
   * trace context that `pulse-streaming/otel` adds is not counted), in a
   * plain object: a Map, a class instance, or inherited, symbol-keyed or
   * non-enumerable properties are an `InvalidArgumentError` (they would not
   * be stored). Dead letters and replays keep them.
   * @defaultValue none (the entry is exactly `n`, `p` and `t`, as Go Pulse writes it)
   */
  headers?: Record<string, string> | undefined;
  /**
   * Idempotent publish: an add whose `dedupId` was already added to this
   * stream within {@link StreamOptions.dedupWindowMs} adds nothing and
   * resolves to the ID of the first add. Decided on the server, atomically
   * with the `XADD`, so it holds across processes and clients. A non-empty,
   * well-formed string (a lone surrogate is an `InvalidArgumentError`: it
   * would become U+FFFD, and two different IDs the same).
   * @defaultValue none
   */
  dedupId?: string | undefined;
}

/**
 * Options of {@link Stream.newReader}. `Events`: the stream's event map, so
 * that `filter` sees typed events on a typed stream.
 */
export interface ReaderOptions<Events extends EventMap = Untyped> {
  /** Where the cursor starts. @defaultValue `'newest'` */
  startAt?: StartAt | undefined;
  /**
   * Longest wait of one blocking read, in milliseconds; must be > 0. On a
   * Redis Cluster a sink reads each hash slot on its own, and every read that
   * times out is a command: there, a sink's read of a slot where nothing
   * arrives blocks up to 30 minutes instead, while its buffers are at most
   * half full and the server lets it end such a read (`CLIENT UNBLOCK`). An
   * event ends the read at once; so do a change of the sink's streams in
   * that slot and a full buffer. At most 2147483647 (a timer's limit).
   * @defaultValue 5000
   */
  blockMs?: number | undefined;
  /** Most entries read in one call. @defaultValue 1000 */
  maxPolled?: number | undefined;
  /** Events buffered per subscription before reading pauses. @defaultValue 1000 */
  bufferSize?: number | undefined;
  /** A string matches the topic exactly, a RegExp tests it. @defaultValue all events */
  topic?: string | RegExp | undefined;
  /**
   * Custom matcher, applied after `topic`; a sink acks what it rejects. An
   * event whose `data` the filter reads but cannot have (it does not decode,
   * or its schema validates asynchronously) passes, as if there were no
   * filter: `process()` dead-letters one that does not decode. A filter that
   * throws rejects the event: each is logged at `error`; without a logger, the
   * first is a process warning `PulseWarning` with code `PULSE_FILTER_THREW`.
   * It must answer synchronously: one that answers a promise (an `async`
   * function) is refused as a throwing one is, on every event.
   * @defaultValue none
   */
  filter?: ((event: EventOf<Events>) => boolean) | undefined;
}

/** Options of {@link Stream.newSink}. */
export interface SinkOptions<Events extends EventMap = Untyped> extends ReaderOptions<Events> {
  /**
   * Events need no ack (`XREADGROUP NOACK`): Redis acks each event as the
   * sink reads it, so nothing is pending and nothing is ever redelivered (at
   * most once). A handler of `process()` or `processBatch()` that throws
   * loses its event (a `warn` line says "handler failed on a noAck sink: the
   * event is not redelivered"); `event.nack()` rejects with
   * `InvalidArgumentError`; `maxDeliveries` here and the `retry` option of
   * `process()` are refused with `InvalidArgumentError`; events read but not
   * yet handed out when the instance stops go with it. Events that do not
   * decode are still copied to the dead-letter stream, and events trimmed
   * before the sink read them are still reported lost.
   * @defaultValue false
   */
  noAck?: boolean | undefined;
  /**
   * An event not acked this long after delivery is redelivered to a live consumer of the sink.
   * A consumer silent for twice this long is stale. At most 2147483647
   * (2^31-1 ms, about 24.8 days, the longest a timer can wait): larger values
   * are rejected with `InvalidArgumentError`.
   * @defaultValue 20000
   */
  ackGracePeriodMs?: number | undefined;
  /**
   * After this many deliveries an event still not acked is moved to the dead-letter stream
   * (reason `max deliveries reached`). A `process()` or `processBatch()` handler that fails on the
   * last of them has its event moved at once, without the retry delay; an event a `for await` loop
   * nacks or leaves is moved when it comes due again (after its nack delay or the grace period).
   * Refused with `InvalidArgumentError` on a `noAck` sink (nothing is redelivered there).
   * @defaultValue unlimited
   */
  maxDeliveries?: number | undefined;
  /**
   * Name of the stream that receives dead letters. The command line's `dead`
   * commands and the dashboard's dead-letter counts, pages and
   * `pulse_dead_letters` know only the default: read and replay the letters
   * of another with `readDeadLetters` and `replayDeadLetters` and their
   * `deadLetterStream` option.
   * @defaultValue `<stream name>:dead`
   */
  deadLetterStream?: string | undefined;
}

/** Options of `addStream` on readers and sinks. */
export interface AddStreamOptions {
  /** Where this stream's cursor starts. @defaultValue the reader's or sink's own `startAt` */
  startAt?: StartAt | undefined;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /**
   * Ends the subscription when aborted. Anything else than an `AbortSignal`
   * is rejected with `InvalidArgumentError`.
   * @defaultValue none
   */
  signal?: AbortSignal | undefined;
}

/** Options of {@link SinkEvent.nack}: see `NackOptions` in event.ts. */
export type { NackOptions } from './event.js';

/**
 * When a failed delivery is redelivered: delivery `d` (its `deliveryCount`)
 * after `min(maxDelayMs, delayMs * factor^(d-1))`, scaled by a random factor
 * in `[1 - jitter, 1 + jitter]` (`[1 - jitter, 1]` once capped: never more than `maxDelayMs`),
 * honoured by every instance of the sink,
 * whatever its `ackGracePeriodMs` (see `nack({ delayMs })`).
 */
export interface RetryOptions {
  /** Delay after the first failed delivery (ms), at most `Number.MAX_SAFE_INTEGER`. @defaultValue 1000 */
  delayMs?: number | undefined;
  /** Growth of the delay from one failed delivery to the next (at least 1). @defaultValue 2 */
  factor?: number | undefined;
  /** Longest delay (ms), jitter included, at most `Number.MAX_SAFE_INTEGER`. @defaultValue 60000 */
  maxDelayMs?: number | undefined;
  /** Spread of the random factor, from 0 (none) to 1. @defaultValue 0.2 */
  jitter?: number | undefined;
}

/** Options of {@link Sink.process}. */
export interface ProcessOptions {
  /** Most handlers running at once. @defaultValue 1 */
  concurrency?: number | undefined;
  /** Stops taking new events when aborted; resolves after in-flight handlers finish. @defaultValue none */
  signal?: AbortSignal | undefined;
  /**
   * Backoff of failed deliveries (a handler that threw): the event is nacked
   * with the delay of its delivery count. `false`: redelivered at once.
   * Refused with `InvalidArgumentError` on a `noAck` sink (nothing is redelivered there).
   * @defaultValue `{ delayMs: 1000, factor: 2, maxDelayMs: 60000, jitter: 0.2 }`
   */
  retry?: RetryOptions | false | undefined;
}

/** Options of {@link Sink.processBatch}. */
export interface ProcessBatchOptions extends ProcessOptions {
  /** Most events in one handler call. @defaultValue 100 */
  maxBatch?: number | undefined;
  /**
   * Longest wait for more events after the first event of a batch (ms); a
   * batch goes to the handler once it is full or this has passed. 0: the
   * events already buffered, without waiting. At most 2147483647 (about 24.8
   * days, the longest a timer can wait): an `InvalidArgumentError` otherwise.
   * @defaultValue 20
   */
  maxWaitMs?: number | undefined;
  /** Most handler calls (batches) running at once. @defaultValue 1 */
  concurrency?: number | undefined;
}

/** A handler of {@link Sink.process}. */
export type EventHandler<E extends SinkEvent = SinkEvent> = (event: E) => unknown;

/** A handler of {@link Sink.processBatch}: the batch's events, in the order read. */
export type BatchHandler<E extends SinkEvent = SinkEvent> = (events: E[]) => unknown;
