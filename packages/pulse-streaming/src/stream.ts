import type { RedisClient } from './client.js';
import { ClosedError, InvalidArgumentError } from './errors.js';
import type { EventMap, EventNames, PayloadOf, Untyped } from './event.js';
import { AddPath, type AddRequest, addError } from './internal/add.js';
import { type AddMessage, addChannel, traceAdd } from './internal/diagnostics.js';
import { checkOpen, type Driver, driverFor, evalScript } from './internal/driver.js';
import { EventCodec } from './internal/eventCodec.js';
import { GoLifecycle } from './internal/goLifecycle.js';
import { headerFields, headersOf, MAX_HEADERS } from './internal/headers.js';
import {
  dedupKeys,
  lastRemovalKey,
  positionsKey,
  removedKey,
  replayedKey,
  sinkKeys,
  sinkRegistryKey,
  streamKey,
} from './internal/keys.js';
import { destroyStream, removeEntries } from './internal/lossScripts.js';
import { EVENT_FIELDS, OPTION_NAMES } from './internal/optionLists.js';
import { checkOptionNames } from './internal/optionNames.js';
import { toPulseError } from './internal/redisErrors.js';
import { str } from './internal/replies.js';
import { safeLogger } from './internal/safeLogger.js';
import {
  checkBool,
  checkId,
  checkInt,
  checkName,
  checkOptionalInt,
  checkWellFormed,
  describeValue,
  isWellFormed,
} from './internal/validate.js';
import { checkLogger, type Logger, silentLogger } from './logger.js';
import type {
  AddOptions,
  ForwardedStreamOptions,
  ReaderOptions,
  Retention,
  SinkOptions,
  StreamArgs,
  StreamOptions,
} from './options.js';
import { Reader } from './reader.js';
import { Sink } from './sink.js';

const noop = (): void => {};

/** How long a destroyed stream's sinks keep the count of what it took from them, for a live instance to report. */
const OBITUARY_MS = 10 * 60_000;

/**
 * A stream of events, stored in the Redis stream `pulse:stream:<name>`.
 * All `Stream` instances with the same name share the same events.
 *
 * `Events` maps event names to their data types (`{ 'order.created': { id:
 * number } }`): with it (and a `codec`), `add` takes values of those types
 * and readers and sinks yield events whose `data` is narrowed by
 * `eventName`. Without it the stream is untyped: payloads are bytes or strings.
 */
export class Stream<Events extends EventMap = Untyped> {
  /** Name of the stream. */
  readonly name: string;
  /** Approximate maximum number of entries; 0 means no trimming. @defaultValue 1000 */
  readonly maxLen: number;
  /** What trimming may remove (see {@link StreamOptions.retention}). @defaultValue 'limits' */
  readonly retention: Retention;
  /** @internal Redis key of the stream. */
  readonly key: string;
  /** @internal */
  readonly driver: Driver;
  /** @internal */
  readonly logger: Logger;
  /**
   * @internal True when the user passed a `logger`: losses are then logged
   * with it; without one they are reported as process warnings (`LossReport`).
   */
  readonly hasLogger: boolean;
  /** @internal Expiry of the key in ms, if any. */
  readonly ttlMs: number | undefined;
  /** @internal With `ttlMs`: the expiry is refreshed on every add. */
  readonly slidingTtl: boolean;
  /** How long an add's `dedupId` is remembered, in ms. @defaultValue 120000 */
  readonly dedupWindowMs: number;
  /** @internal The codec and schemas of a typed stream; undefined for an untyped one. */
  readonly codec: EventCodec | undefined;
  /**
   * The last add still waiting for an asynchronous schema: later adds wait
   * behind it, so that adds are stored in the order they were issued. Each
   * such wait is bounded (`schemaLimits.answerMs`, internal/eventCodec.ts): a
   * schema that never answers rejects its own add, then releases the others.
   */
  #validating: Promise<unknown> | undefined;
  /** How this instance's adds travel (internal/add.ts). */
  readonly #adds: AddPath;
  /** @internal Go Pulse v1.10's lifecycle record, created once per instance (internal/goLifecycle.ts). */
  readonly goLifecycle: GoLifecycle = new GoLifecycle(this);

  /**
   * @param name - 1 to 512 characters, no space, NUL, `*`, `?`, `[` or `]`, not ending in `:lifecycle`
   *   (`pulse:stream:<x>:lifecycle` is Go Pulse's lifecycle record of stream `<x>`).
   * @param redis - an ioredis `Redis`/`Cluster` or a node-redis client/cluster; never closed by the library.
   * @param options - see {@link StreamOptions}: optional on an untyped stream; on a typed one (an event map
   *   as type argument) required, with `codec` or `schemas`, which make it typed at run time too
   *   ({@link StreamArgs}). Omitted on an untyped stream: `{}`, every option at its default.
   * @throws InvalidArgumentError for a bad name, client or option.
   */
  constructor(name: string, redis: RedisClient, ...options: StreamArgs<Events>);
  /**
   * For generic code whose event map is a type parameter (a factory forwarding
   * its caller's `options?: StreamOptions<E>` to `new Stream<E>(...)`): the
   * options are taken as they are, as `codec` or `schemas` cannot be required
   * of a type parameter without breaking such code. Generic code trades that
   * check for compatibility; a concrete event map never matches this overload
   * with an object (see {@link ForwardedStreamOptions}).
   * @param options - see {@link StreamOptions}; omitted or `undefined`: `{}`, every option at its default.
   */
  constructor(name: string, redis: RedisClient, options: (StreamOptions<Events> & ForwardedStreamOptions<Events>) | undefined);
  constructor(name: string, redis: RedisClient, options: StreamOptions<Events> = {}) {
    this.name = checkName('stream', name);
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    checkOptionNames('Stream', options, OPTION_NAMES.Stream);
    this.maxLen = checkInt('maxLen', options.maxLen, 1000, 0);
    this.ttlMs = checkOptionalInt('ttlMs', options.ttlMs, 0);
    if (this.ttlMs === 0) this.ttlMs = undefined;
    this.slidingTtl = checkBool('slidingTtl', options.slidingTtl, false);
    if (this.slidingTtl && this.ttlMs === undefined) throw new InvalidArgumentError('slidingTtl needs ttlMs');
    const retention = options.retention ?? 'limits';
    if (retention !== 'limits' && retention !== 'interest') {
      throw new InvalidArgumentError(`retention must be 'limits' or 'interest', got ${describeValue(retention)}`);
    }
    this.retention = retention;
    this.dedupWindowMs = checkInt('dedupWindowMs', options.dedupWindowMs, 120_000, 1);
    this.codec = EventCodec.of(options.codec, options.schemas);
    this.driver = driverFor(redis);
    this.key = streamKey(name);
    const logger = checkLogger(options.logger);
    // Wrapped here, where the user's logger enters, so that no call of the library into it can throw or
    // reject (internal/safeLogger.ts): a logger that fails never costs an event nor crashes the process.
    this.logger = (logger === undefined ? silentLogger : safeLogger(logger, `stream ${name}`)).child({ stream: name });
    this.hasLogger = logger !== undefined;
    this.#adds = new AddPath(this);
  }

  /**
   * Appends an event and resolves to its ID.
   * With `onlyIfStreamExists` and no stream key, nothing is added and it resolves to `undefined`.
   * Adds issued in the same tick to one stream travel as script calls of up to
   * 256 events or 256 KiB, one call per turn of the event loop (on a cluster,
   * one step per slot in flight), in the order they were issued; each promise
   * settles on its own event's outcome. An add of 8 KiB or more without TTL
   * or dedupId leaves as a plain XADD in its place among them.
   * Adds of one producer to one stream are stored in the order issued, also
   * across reconnects, restarts, flushed script caches and slot migrations,
   * and an add is never sent twice.
   * @param payload - untyped stream: bytes, or a string encoded as UTF-8;
   * typed stream: a value of the event's type, checked by its schema and
   * encoded by the codec. What is stored is the payload as it was at the
   * call: bytes are copied, and a typed value is encoded at the call (also
   * when its schema validates asynchronously), so the caller may change or
   * reuse it once `add()` returns. An asynchronous schema that does not
   * answer within 10 s rejects the add (later adds wait behind it until then,
   * to keep their order).
   * @throws InvalidArgumentError when the event's schema refuses the value,
   * throws, or does not answer in time, or the codec cannot encode it
   * (nothing is added).
   * @throws PulseError with `code` `'ADD_OUTCOME_UNKNOWN'` and a message
   * saying "outcome unknown" when the command was written (or may have been)
   * and the connection was lost before Redis answered: maybe stored, maybe
   * not. Every other rejection means the event was not stored.
   * @throws PulseError with the Redis reply `code` when Redis refused it (not
   * stored); with `code` `'ADD_NOT_SENT'` when the client gave up on it
   * before writing it (a command timeout while disconnected, or the
   * connection adds use could not open: not stored).
   * @throws ClosedError when your client was closed or never connected, also
   * for adds issued just before it was closed (not stored).
   */
  add<Name extends EventNames<Events>>(
    eventName: Name,
    payload: PayloadOf<Events, Name>,
    options?: AddOptions & { onlyIfStreamExists?: false | undefined },
  ): Promise<string>;
  /** As above; with `onlyIfStreamExists: true` and no stream key, nothing is added and it resolves to `undefined`. */
  add<Name extends EventNames<Events>>(
    eventName: Name,
    payload: PayloadOf<Events, Name>,
    options: AddOptions,
  ): Promise<string | undefined>;
  add(eventName: string, payload: unknown, options?: AddOptions): Promise<string | undefined> {
    // Not an async function: one returning #add's promise cost every awaited add two turns of
    // the microtask queue, microseconds between round trips (issue 19). What is refused still
    // rejects, never throws.
    try {
      return this.#checkedAdd(eventName, payload, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #checkedAdd(eventName: string, payload: unknown, options: AddOptions | undefined): Promise<string | undefined> {
    if (typeof eventName !== 'string') throw new InvalidArgumentError('eventName must be a string');
    checkWellFormed('eventName', eventName);
    if (options !== undefined && (typeof options !== 'object' || options === null))
      throw new InvalidArgumentError('add options must be an object, e.g. { topic }');
    // Strict: a name add ignored (`{ dedupKey }`, or `{ maxLen }`, a Stream option) would store a retry
    // twice or trim nothing, in silence; an event's own fields pass (an event forwarded as the options
    // of its copy gives its topic and headers: review P).
    checkOptionNames('add', options, OPTION_NAMES.add, EVENT_FIELDS);
    const topic = options?.topic;
    if (topic !== undefined) {
      if (typeof topic !== 'string') throw new InvalidArgumentError('topic must be a string');
      checkWellFormed('topic', topic);
    }
    const onlyIfExists = checkBool('onlyIfStreamExists', options?.onlyIfStreamExists, false);
    // Read once, here: what is stored is what the headers were at the call, traced or not.
    const headers = headerFields(options?.headers, MAX_HEADERS);
    const dedupId = options?.dedupId;
    if (dedupId !== undefined && (typeof dedupId !== 'string' || dedupId === '')) {
      throw new InvalidArgumentError('dedupId must be a non-empty string');
    }
    if (dedupId !== undefined) checkWellFormed('dedupId', dedupId);
    let p: Buffer | string;
    if (this.codec !== undefined) {
      const encoded = this.codec.encode(eventName, payload);
      // Checked at once (the common case) and nothing waiting before it: sent this tick, merged with the others.
      if (this.#validating !== undefined || encoded instanceof Promise) {
        return this.#inOrder(encoded).then((later) =>
          this.#sendPayload({ eventName, payload: later, topic, onlyIfExists, headers, dedupId }),
        );
      }
      p = encoded;
    } else if (typeof payload === 'string') p = payload;
    // A copy: the add is sent on a later turn, and the bytes stored are those at the call (the
    // caller may reuse its buffer, or transfer its ArrayBuffer to a worker, once add() returns).
    else if (payload instanceof Uint8Array) p = Buffer.from(payload);
    else throw new InvalidArgumentError('payload must be a Uint8Array, Buffer or string');
    return this.#sendPayload({ eventName, payload: p, topic, onlyIfExists, headers, dedupId });
  }

  /** An add whose payload is encoded: checked as UTF-8 if text, traced when something listens, sent. Throws what it refuses. */
  #sendPayload(a: AddRequest): Promise<string | undefined> {
    // Sent as UTF-8 (also what a codec encoded): a lone surrogate would come back as U+FFFD, not as the string added.
    if (typeof a.payload === 'string' && !isWellFormed(a.payload))
      throw new InvalidArgumentError('payload must be well-formed UTF-16 (it has a lone surrogate): pass its bytes as a Buffer');
    // Tracing (pulse-streaming/otel) may add headers: the trace context.
    if (addChannel.hasSubscribers) {
      const { eventName, topic, dedupId } = a;
      const msg: AddMessage = { streamName: this.name, eventName, topic, dedupId, headers: headersOf(a.headers) };
      return traceAdd(msg, (fields) => this.#add({ ...a, headers: fields }));
    }
    return this.#add(a);
  }

  async #add(a: AddRequest): Promise<string | undefined> {
    // Nothing can be sent: say so, rather than "outcome unknown" from the failure that would follow.
    const closed = this.driver.closed();
    if (closed !== undefined) throw new ClosedError(`add to stream ${this.name}: not stored, ${closed}`);
    const merge = this.#adds.describe(a);
    let reply: unknown;
    try {
      reply = await this.driver.sendMergeable(merge, this.key);
    } catch (err) {
      throw addError(err, this.name, this.driver.closed());
    }
    if (reply === null || reply === undefined) return undefined;
    // Once per instance, not per add: Go readers need the record (goLifecycle.ts). Then, now and
    // then, a look at whether Go destroyed the stream since (a process may only publish).
    if (!this.goLifecycle.done) await this.goLifecycle.ensure();
    else this.goLifecycle.afterAdd();
    return str(reply);
  }

  /**
   * The payload of an add whose schema answers with a promise, or that comes
   * after one: it resolves only after every earlier such add's, so adds are
   * sent in the order they were issued.
   */
  #inOrder(encoded: Buffer | string | Promise<Buffer | string>): Promise<Buffer | string> {
    const before = this.#validating;
    // Handled now: adopted only once the earlier adds' schemas answered, a refusal that came first
    // was an unhandled rejection meanwhile, which ends a Node process by default (outside review).
    if (encoded instanceof Promise) encoded.catch(noop);
    const mine = before === undefined ? Promise.resolve(encoded) : before.then(() => encoded);
    const settled = mine.then(noop, noop);
    this.#validating = settled;
    void settled.then(() => {
      if (this.#validating === settled) this.#validating = undefined;
    });
    return mine;
  }

  /**
   * Deletes entries by ID.
   * @throws ClosedError when your client was closed or never connected, before any Redis call.
   */
  async remove(...ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) checkId('id', id);
    checkOpen(this.driver, `remove from stream ${this.name}`);
    try {
      // Recorded, so no loss hides behind the deletion; the dedup hashes of an
      // earlier life dropped before it (see removeEntries).
      const dedup = dedupKeys(this.name);
      const keys = [this.key, lastRemovalKey(this.name), removedKey(this.name), sinkRegistryKey(this.name)];
      await evalScript(this.driver, removeEntries, [...keys, dedup.current, dedup.old], ids);
    } catch (err) {
      throw toPulseError(err, `remove from stream ${this.name}`);
    }
  }

  /**
   * Deletes the stream key and every key the library keeps for it (its
   * dead-letter stream is a stream of its own and stays, and so does Go
   * Pulse's lifecycle record, so Go services keep sharing the name: README
   * "Using it with Go services"). What it takes from
   * each sink (events not read yet, and pending ones, those being handled
   * included) is reported lost by one instance of that sink: the count
   * waits in a key of its own for 10 minutes, for a live instance or one
   * started (`newSink`, `addStream`) within them.
   * A live sink does not bring any of them back, unless the stream is
   * created again (a producer's add), when it recreates its group and
   * registers again.
   * @throws ClosedError when your client was closed or never connected, before any Redis call.
   */
  async destroy(): Promise<void> {
    checkOpen(this.driver, `destroy stream ${this.name}`);
    const registry = sinkRegistryKey(this.name);
    try {
      const sinks = ((await this.driver.send(['SMEMBERS', registry], registry)) as unknown[]).map(str);
      const dedup = dedupKeys(this.name);
      const keys = [
        this.key,
        registry,
        lastRemovalKey(this.name),
        // KEYS[4] of destroyStream: its removed counts go into the obituaries.
        removedKey(this.name),
        replayedKey(this.name),
        positionsKey(this.name),
        dedup.current,
        dedup.old,
      ];
      const obituaries: string[] = [];
      const consumers: string[] = [];
      for (const s of sinks) {
        const { obituary, ...rest } = sinkKeys(this.name, s);
        keys.push(...Object.values(rest));
        obituaries.push(obituary);
        consumers.push(rest.consumers);
      }
      // The stream key and the bookkeeping keys share a slot on purpose.
      const all = [...keys, ...obituaries, ...consumers];
      await evalScript(this.driver, destroyStream, all, [keys.length - 1, OBITUARY_MS, ...sinks]);
    } catch (err) {
      throw toPulseError(err, `destroy stream ${this.name}`);
    }
  }

  /**
   * Creates a reader: every reader gets every event, from `startAt` on.
   * @throws ClosedError when your client was closed or never connected, before any Redis call.
   */
  newReader(options?: ReaderOptions<Events>): Promise<Reader<Events>> {
    // The filter sees the stream's typed events: the reader itself handles them untyped.
    return Reader.create(this, (options ?? {}) as unknown as ReaderOptions);
  }

  /**
   * Creates a sink instance (one Redis consumer of the group `name`). All sink
   * instances with the same name share one cursor and split the events.
   * The consumer group exists in Redis when it resolves.
   * @throws ClosedError when your client was closed or never connected, before any Redis call.
   */
  async newSink(name: string, options?: SinkOptions<Events>): Promise<Sink<Events>> {
    const sink = await Sink.create(this, name, (options ?? {}) as unknown as SinkOptions);
    // The group's MKSTREAM may have created the stream: Go readers need the record too.
    await this.goLifecycle.ensure();
    return sink;
  }
}
