import type { RedisClient } from './client.js';
import { InvalidArgumentError, type PulseError } from './errors.js';
import type { EventMap, EventNames, PayloadOf, Untyped } from './event.js';
import { addEvents, addEventsInterest, packExtras } from './internal/addScripts.js';
import type { Mergeable } from './internal/batcher.js';
import { type AddMessage, addChannel } from './internal/diagnostics.js';
import { type Arg, type Driver, driverFor, evalScript } from './internal/driver.js';
import { EventCodec } from './internal/eventCodec.js';
import { GoLifecycle } from './internal/goLifecycle.js';
import { headerFields } from './internal/headers.js';
import {
  dedupKeys,
  FIELD_NAME,
  FIELD_PAYLOAD,
  FIELD_TOPIC,
  lastRemovalKey,
  removedKey,
  replayedKey,
  sinkKeys,
  sinkRegistryKey,
  streamKey,
} from './internal/keys.js';
import { destroyStream, removeEntries } from './internal/lossScripts.js';
import { replyCode, toPulseError } from './internal/redisErrors.js';
import { str } from './internal/replies.js';
import type { Script } from './internal/script.js';
import { checkBool, checkId, checkInt, checkName, checkOptionalInt } from './internal/validate.js';
import { type Logger, silentLogger } from './logger.js';
import type { AddOptions, ReaderOptions, Retention, SinkOptions, StreamOptions } from './options.js';
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
  /** The dedup keys, `KEYS[2]` and `KEYS[3]` of the add script when some event of the call has a dedupId. */
  readonly #dedupKeys: readonly string[];
  readonly #keysOf = (parts: ReadonlyArray<readonly Arg[]>): readonly string[] => {
    for (const part of parts) if (part.length > 3 && part[3] !== '') return this.#dedupKeys;
    return [];
  };
  /** @internal The codec and schemas of a typed stream; undefined for an untyped one. */
  readonly codec: EventCodec | undefined;
  /**
   * The last add still waiting for an asynchronous schema: later adds wait
   * behind it, so that adds are stored in the order they were issued.
   */
  #validating: Promise<unknown> | undefined;
  readonly #trim: readonly Arg[];
  readonly #head: readonly Arg[];
  readonly #headNoCreate: readonly Arg[];
  readonly #tag: string;
  readonly #tagNoCreate: string;
  readonly #script: Script;
  /** 'interest' trimming: only the script knows what it may remove (addScripts.ts). */
  readonly #trimsByScript: boolean;
  /** With #trimsByScript: lone adds sent as plain XADDs (which do not trim) since the last lone one that trimmed. */
  #untrimmed = 0;
  /** @internal Go Pulse v1.10's lifecycle record, created once per instance (internal/goLifecycle.ts). */
  readonly goLifecycle: GoLifecycle = new GoLifecycle(this);

  /**
   * @param name - 1 to 512 characters, no space, NUL, `*`, `?`, `[` or `]`.
   * @param redis - an ioredis `Redis`/`Cluster` or a node-redis client/cluster; never closed by the library.
   * @throws InvalidArgumentError for a bad name, client or option.
   */
  constructor(name: string, redis: RedisClient, options: StreamOptions<Events> = {}) {
    this.name = checkName('stream', name);
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    this.maxLen = checkInt('maxLen', options.maxLen, 1000, 0);
    this.ttlMs = checkOptionalInt('ttlMs', options.ttlMs, 0);
    if (this.ttlMs === 0) this.ttlMs = undefined;
    this.slidingTtl = checkBool('slidingTtl', options.slidingTtl, false);
    const retention = options.retention ?? 'limits';
    if (retention !== 'limits' && retention !== 'interest') {
      throw new InvalidArgumentError(`retention must be 'limits' or 'interest', got ${String(retention)}`);
    }
    this.retention = retention;
    this.dedupWindowMs = checkInt('dedupWindowMs', options.dedupWindowMs, 120_000, 1);
    this.codec = EventCodec.of(options.codec, options.schemas);
    this.driver = driverFor(redis);
    this.key = streamKey(name);
    this.logger = (options.logger ?? silentLogger).child({ stream: name });
    this.hasLogger = options.logger !== undefined && options.logger !== null;
    this.#trim = this.maxLen > 0 ? ['MAXLEN', '~', String(this.maxLen)] : [];
    const ttl = this.ttlMs === undefined ? '' : String(this.ttlMs);
    const mode = this.slidingTtl ? 'sliding' : 'absolute';
    const maxLen = this.maxLen > 0 ? String(this.maxLen) : '';
    const window = String(this.dedupWindowMs);
    this.#head = [maxLen, '', ttl, mode, window];
    this.#headNoCreate = [maxLen, '1', ttl, mode, window];
    const dedup = dedupKeys(name);
    this.#dedupKeys = [dedup.ids, dedup.expiry];
    // Streams with the same key and settings merge their adds; others keep theirs apart.
    this.#tag = `${this.key}\n${retention}\n${this.#head.join(' ')}`;
    this.#tagNoCreate = `${this.key}\n${retention}\n${this.#headNoCreate.join(' ')}`;
    this.#script = retention === 'interest' ? addEventsInterest : addEvents;
    this.#trimsByScript = retention === 'interest' && this.maxLen > 0;
  }

  /**
   * Appends an event and resolves to its ID.
   * With `onlyIfStreamExists` and no stream key, nothing is added and it resolves to `undefined`.
   * Adds issued in the same tick to one stream travel as script calls of up to
   * 256 events or 256 KiB, one call per turn of the event loop (on a cluster,
   * one step per slot in flight), in the order they were issued; each promise
   * settles on its own event's outcome.
   * Adds of one producer to one stream are stored in the order issued, also
   * across reconnects, restarts, flushed script caches and slot migrations,
   * and an add is never sent twice.
   * @param payload - untyped stream: bytes, or a string encoded as UTF-8;
   * typed stream: a value of the event's type, checked by its schema and
   * encoded by the codec.
   * @throws InvalidArgumentError when the event's schema refuses the value
   * or the codec cannot encode it (nothing is added).
   * @throws PulseError with the Redis reply `code` when Redis refused it (not
   * stored); with a message saying "outcome unknown" when the connection was
   * lost before Redis answered (maybe stored, maybe not).
   */
  add<Name extends EventNames<Events>>(
    eventName: Name,
    payload: PayloadOf<Events, Name>,
    options?: AddOptions & { onlyIfStreamExists?: false },
  ): Promise<string>;
  /** As above; with `onlyIfStreamExists: true` and no stream key, nothing is added and it resolves to `undefined`. */
  add<Name extends EventNames<Events>>(
    eventName: Name,
    payload: PayloadOf<Events, Name>,
    options: AddOptions,
  ): Promise<string | undefined>;
  async add(eventName: string, payload: unknown, options?: AddOptions): Promise<string | undefined> {
    if (typeof eventName !== 'string') throw new InvalidArgumentError('eventName must be a string');
    const topic = options?.topic;
    if (topic !== undefined && typeof topic !== 'string') throw new InvalidArgumentError('topic must be a string');
    const onlyIfExists = checkBool('onlyIfStreamExists', options?.onlyIfStreamExists, false);
    const headers = headerFields(options?.headers);
    const dedupId = options?.dedupId;
    if (dedupId !== undefined && (typeof dedupId !== 'string' || dedupId === '')) {
      throw new InvalidArgumentError('dedupId must be a non-empty string');
    }
    let p: Buffer | string;
    if (this.codec !== undefined) {
      const encoded = this.codec.encode(eventName, payload);
      // Checked at once (the common case) and nothing waiting before it: sent this tick, merged with the others.
      p = this.#validating === undefined && !(encoded instanceof Promise) ? encoded : await this.#inOrder(encoded);
    } else if (typeof payload === 'string' || Buffer.isBuffer(payload)) p = payload;
    else if (payload instanceof Uint8Array) p = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    else throw new InvalidArgumentError('payload must be a Uint8Array, Buffer or string');
    // Tracing (pulse-streaming/otel) may add headers: the trace context.
    if (addChannel.hasSubscribers) {
      const msg: AddMessage = { streamName: this.name, eventName, topic, dedupId, headers: { ...options?.headers } };
      return addChannel.tracePromise(
        // async: a subscriber's bad header rejects (asyncEnd) rather than throws.
        async () => this.#add(eventName, p, topic, onlyIfExists, headerFields(msg.headers), dedupId),
        msg,
      ) as Promise<string | undefined>;
    }
    return this.#add(eventName, p, topic, onlyIfExists, headers, dedupId);
  }

  async #add(
    eventName: string,
    p: Buffer | string,
    topic: string | undefined,
    onlyIfExists: boolean,
    headers: readonly string[],
    dedupId: string | undefined,
  ): Promise<string | undefined> {
    // Adds of one tick to this stream leave as script calls (batcher.ts);
    // a lone add without TTL or dedupId stays a plain XADD (under 'interest', but for one in 50).
    let weight = p.length + eventName.length + (topic?.length ?? 0) + (dedupId?.length ?? 0);
    for (const h of headers) weight += h.length;
    const merge: Mergeable = {
      tag: onlyIfExists ? this.#tagNoCreate : this.#tag,
      script: this.#script,
      head: onlyIfExists ? this.#headNoCreate : this.#head,
      keys: this.#keysOf,
      parts:
        headers.length === 0 && dedupId === undefined
          ? [eventName, p, topic ?? '']
          : [eventName, p, topic ?? '', dedupId ?? '', ...headers],
      weight,
      alone:
        this.ttlMs === undefined && dedupId === undefined
          ? () => this.#lone(eventName, p, topic, onlyIfExists, headers)
          : undefined,
      pack: packAdds,
      unpack: unpackIds,
    };
    let reply: unknown;
    try {
      reply = await this.driver.sendMergeable(merge, this.key);
    } catch (err) {
      throw addError(err, this.name);
    }
    if (reply === null || reply === undefined) return undefined;
    // Once per instance, not per add: Go readers need the record (goLifecycle.ts).
    if (!this.goLifecycle.done) await this.goLifecycle.ensure();
    return str(reply);
  }

  /**
   * The payload of an add whose schema answers with a promise, or that comes
   * after one: it resolves only after every earlier such add's, so adds are
   * sent in the order they were issued.
   */
  #inOrder(encoded: Buffer | string | Promise<Buffer | string>): Promise<Buffer | string> {
    const before = this.#validating;
    const mine = before === undefined ? Promise.resolve(encoded) : before.then(() => encoded);
    const settled = mine.then(noop, noop);
    this.#validating = settled;
    void settled.then(() => {
      if (this.#validating === settled) this.#validating = undefined;
    });
    return mine;
  }

  /**
   * The command of an add with nothing to merge with: a plain XADD, or
   * undefined for a script call. Under 'interest' a plain XADD cannot trim,
   * so one lone add in {@link LONE_ADDS_PER_TRIM} is a script call that does:
   * an EVAL of the script costs Redis several times an XADD.
   */
  #lone(
    eventName: string,
    payload: Buffer | string,
    topic: string | undefined,
    onlyIfExists: boolean,
    headers: readonly string[],
  ): Arg[] | undefined {
    if (this.#trimsByScript && ++this.#untrimmed >= LONE_ADDS_PER_TRIM) {
      this.#untrimmed = 0;
      return undefined;
    }
    const args: Arg[] = ['XADD', this.key];
    if (onlyIfExists) args.push('NOMKSTREAM');
    if (!this.#trimsByScript) for (const t of this.#trim) args.push(t);
    args.push('*', FIELD_NAME, eventName, FIELD_PAYLOAD, payload);
    if (topic) args.push(FIELD_TOPIC, topic);
    for (const h of headers) args.push(h);
    return args;
  }

  /** Deletes entries by ID. */
  async remove(...ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) checkId('id', id);
    try {
      // Recorded, so no loss hides behind the deletion (see removeEntries).
      await evalScript(
        this.driver,
        removeEntries,
        [this.key, lastRemovalKey(this.name), removedKey(this.name), sinkRegistryKey(this.name)],
        ids,
      );
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
   * included) is reported lost by a live instance of that sink: the count
   * waits for one in a key of its own for 10 minutes.
   * A live sink does not bring any of them back, unless the stream is
   * created again (a producer's add), when it recreates its group and
   * registers again.
   */
  async destroy(): Promise<void> {
    const registry = sinkRegistryKey(this.name);
    try {
      const sinks = ((await this.driver.send(['SMEMBERS', registry], registry)) as unknown[]).map(str);
      const dedup = dedupKeys(this.name);
      const keys = [
        this.key,
        registry,
        lastRemovalKey(this.name),
        removedKey(this.name),
        replayedKey(this.name),
        dedup.ids,
        dedup.expiry,
      ];
      const obituaries: string[] = [];
      for (const s of sinks) {
        const { obituary, ...rest } = sinkKeys(this.name, s);
        keys.push(...Object.values(rest));
        obituaries.push(obituary);
      }
      // The stream key and the bookkeeping keys share a slot on purpose.
      await evalScript(this.driver, destroyStream, [...keys, ...obituaries], [keys.length - 1, OBITUARY_MS, ...sinks]);
    } catch (err) {
      throw toPulseError(err, `destroy stream ${this.name}`);
    }
  }

  /** Creates a reader: every reader gets every event, from `startAt` on. */
  newReader(options?: ReaderOptions): Promise<Reader<Events>> {
    return Reader.create(this, options ?? {});
  }

  /**
   * Creates a sink instance (one Redis consumer of the group `name`). All sink
   * instances with the same name share one cursor and split the events.
   * The consumer group exists in Redis when it resolves.
   */
  async newSink(name: string, options?: SinkOptions): Promise<Sink<Events>> {
    const sink = await Sink.create(this, name, options ?? {});
    // The group's MKSTREAM may have created the stream: Go readers need the record too.
    await this.goLifecycle.ensure();
    return sink;
  }
}

/**
 * Under 'interest' retention, one lone add in this many trims (a script
 * call); the others are plain XADDs. The script trims only once the stream
 * is 100 entries past maxLen anyway; with several producers the stream may
 * pass maxLen by this much per producer before one of them trims.
 */
const LONE_ADDS_PER_TRIM = 50;

/**
 * The events of a merged add in the most compact layout of `addEvents` that
 * fits them: one name for all when they share it and none has a topic, no
 * topics when none has one, name, payload and topic for each when none has
 * headers or a dedupId, else all of it for each. An add's parts are
 * `[name, payload, topic]`, or with headers or a dedupId
 * `[name, payload, topic, dedupId, ...header fields and values]`.
 */
function packAdds(cmd: Arg[], parts: ReadonlyArray<readonly Arg[]>): void {
  const name = parts[0]?.[0];
  let sameName = true;
  let topics = false;
  let extras = false;
  for (const part of parts) {
    if (part[0] !== name) sameName = false;
    if (part[2] !== '') topics = true;
    if (part.length > 3) extras = true;
  }
  if (extras) packExtras(cmd, parts, sameName, topics);
  else if (topics) {
    cmd.push('3');
    for (const [n, p, t] of parts) cmd.push(n ?? '', p ?? '', t ?? '');
  } else if (sameName) {
    cmd.push('1', name ?? '');
    for (const [, p] of parts) cmd.push(p ?? '');
  } else {
    cmd.push('2');
    for (const [n, p] of parts) cmd.push(n ?? '', p ?? '');
  }
}

/** The IDs `addEvents` returns, joined by ',' ('-': not added, the stream key was missing), one per event it ran. */
function unpackIds(joined: unknown): Array<string | null> | undefined {
  if (typeof joined !== 'string' && !Buffer.isBuffer(joined)) return undefined;
  // IDs are ASCII: latin1 decodes them without UTF-8 validation.
  const s = typeof joined === 'string' ? joined : joined.toString('latin1');
  if (s === '') return [];
  const ids: Array<string | null> = s.split(',');
  for (let i = 0; i < ids.length; i++) if (ids[i] === '-') ids[i] = null;
  return ids;
}

/**
 * A Redis error reply (it starts with a code: `WRONGTYPE`, `OOM`, ...) says
 * the add ran and failed, or never ran. Anything else (the connection closed
 * or timed out before the answer came) leaves its outcome unknown: the event
 * may be stored or not, and the library does not send it again.
 */
function addError(err: unknown, stream: string): PulseError {
  if (replyCode(err) !== undefined) return toPulseError(err, `add to stream ${stream}`);
  return toPulseError(
    err,
    `add to stream ${stream}: outcome unknown, no answer from Redis (the event may or may not be stored; it is not sent again)`,
  );
}
