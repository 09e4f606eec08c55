import { DecodeError, PulseError } from './errors.js';
import type { Decoded, EventCodec } from './internal/eventCodec.js';
import { NO_HEADERS } from './internal/headers.js';
import { idTime } from './internal/ids.js';
import { errorText } from './internal/redisErrors.js';

declare const untyped: unique symbol;

/**
 * The event map of a stream created without one (`new Stream(name, redis)`):
 * payloads are bytes or strings and events are not typed.
 */
export type Untyped = { readonly [untyped]: true };

/** Event names and the type of each one's data: `{ 'order.created': { id: number }, ... }`. */
export type EventMap = Record<string, unknown>;

/** The event names `add` takes: any string on an untyped stream. */
export type EventNames<Events extends EventMap> = [Events] extends [Untyped] ? string : keyof Events & string;

/** What `add(name, payload)` takes as payload: bytes or a string on an untyped stream, else the event's type. */
export type PayloadOf<Events extends EventMap, Name extends string> = [Events] extends [Untyped]
  ? Uint8Array | string
  : Name extends keyof Events
    ? Events[Name]
    : never;

/** The events a reader of a stream yields: one type per event name, told apart by `eventName`. */
export type EventOf<Events extends EventMap> = [Events] extends [Untyped]
  ? Event
  : { [Name in keyof Events & string]: Event<Name, Events[Name]> }[keyof Events & string];

/** The events a sink of a stream yields: one type per event name, told apart by `eventName`. */
export type SinkEventOf<Events extends EventMap> = [Events] extends [Untyped]
  ? SinkEvent
  : { [Name in keyof Events & string]: SinkEvent<Name, Events[Name]> }[keyof Events & string];

/** Options of {@link SinkEvent.nack}. */
export interface NackOptions {
  /**
   * Redeliver not before this many milliseconds (0: as soon as possible), and
   * not much later (within the sink's reclaim interval), delays longer than
   * the grace period included; honoured by every instance of the sink,
   * whatever its `ackGracePeriodMs` (the due time is kept in Redis). The
   * reclaim interval: the instance that nacked redelivers on time; once it
   * closed or crashed, another finds the event at its next sweep, every half
   * grace period (up to 10 s late with the default grace).
   * @defaultValue the ack grace period
   */
  delayMs?: number | undefined;
}

/** What acknowledges sink events: the sink that delivered them (Go's `Acker`). */
export interface Acker {
  /** Acknowledges events in one round trip. */
  ack(...events: Event[]): Promise<void>;
}

/** @internal The sink operations behind {@link SinkEvent}'s methods. */
export interface EventOwner extends Acker {
  nack(event: SinkEvent, options?: NackOptions): Promise<void>;
  inProgress(event: SinkEvent): Promise<void>;
}

/** Fields of an event as read from Redis. */
export interface EventInit {
  id: string;
  streamName: string;
  eventName: string;
  topic: string | undefined;
  payload: Buffer;
  deliveryCount?: number | undefined;
  /** Headers read from `h.*` fields; none when absent. */
  headers?: Record<string, string> | undefined;
  /** @internal The stream's codec: `data` decodes with it (none: `data` is the payload). */
  codec?: EventCodec | undefined;
}

function isPending(d: Decoded): d is Promise<{ readonly value: unknown }> {
  return d instanceof Promise;
}

/**
 * The errors `data` threw for events that decode asynchronously and were not
 * decoded yet, with their event (`Event.threwOnData`).
 */
const notDecodedYet = new WeakMap<object, Event>();

/**
 * A stream event, as delivered by a reader. On a typed stream, `Name` and
 * `Data` are one event name of its map and that event's type.
 */
export class Event<Name extends string = string, Data = unknown> {
  /** Redis entry ID, `<ms>-<seq>`. */
  readonly id: string;
  /** Name of the stream the event belongs to. */
  readonly streamName: string;
  /** Producer-defined event name (empty when the entry has none). */
  readonly eventName: Name;
  /** Topic, or undefined when the event has none. */
  readonly topic: string | undefined;
  /** The exact bytes added. */
  readonly payload: Buffer;
  /** 1 on first delivery, higher after a sink redelivers it. */
  readonly deliveryCount: number;
  /**
   * Headers added with the event (`add(..., { headers })`), kept through dead
   * letters and replays. Frozen; an empty object when there are none.
   * @defaultValue `{}`
   */
  readonly headers: Readonly<Record<string, string>>;
  readonly #codec: EventCodec | undefined;
  /** What decoding gave: the value, the failure, or the promise of an asynchronous decode or schema; undefined before. */
  #decoded: Decoded | DecodeError | undefined;

  constructor(init: EventInit) {
    this.id = init.id;
    this.streamName = init.streamName;
    this.eventName = init.eventName as Name;
    this.topic = init.topic;
    this.payload = init.payload;
    this.deliveryCount = init.deliveryCount ?? 1;
    this.headers = init.headers ? Object.freeze(init.headers) : NO_HEADERS;
    this.#codec = init.codec;
  }

  /**
   * The payload decoded by the stream's codec and validated by the event
   * name's schema, decoded on first access and kept. Without a codec (an
   * untyped stream), the payload itself.
   * @throws DecodeError when the codec fails on the bytes or the schema
   * refuses the value (every access throws the same error).
   * @throws PulseError when the codec decodes or the schema validates
   * asynchronously and the event was not decoded yet: `await event.decode()`
   * first (`process()` and `processBatch()` do it before calling the
   * handler).
   */
  get data(): Data {
    const d = this.#decoded ?? this.#decode();
    if (d instanceof PulseError) throw d;
    if (isPending(d)) {
      const err = new PulseError(
        `event ${this.id} (${this.eventName}): it decodes asynchronously (its codec's decode or its schema answers a promise): await event.decode() before reading event.data`,
      );
      notDecodedYet.set(err, this);
      throw err;
    }
    return d.value as Data;
  }

  /**
   * @internal Whether `err` is what reading `data` of this event threw: its
   * `DecodeError`, or the error of an event not decoded yet. A filter that
   * throws it lets the event through (readOptions.ts); any other throw is the
   * filter's own.
   */
  threwOnData(err: unknown): boolean {
    if (this.#codec === undefined || typeof err !== 'object' || err === null) return false;
    return err === this.#decoded || notDecodedYet.get(err) === this;
  }

  /**
   * Resolves to {@link Event.data}, decoding it first when needed (also with
   * a codec that decodes or a schema that validates asynchronously, awaited
   * as long as it takes); rejects with its `DecodeError`.
   */
  decode(): Promise<Data> {
    const d = this.#decoded ?? this.#decode();
    if (d instanceof PulseError) return Promise.reject(d);
    if (isPending(d)) return d.then((x) => x.value as Data);
    return Promise.resolve(d.value as Data);
  }

  /**
   * @internal Whether `data` decodes: undefined when it does, its
   * `DecodeError` when not; a promise of either for an asynchronous schema.
   */
  decodeFailure(): DecodeError | undefined | Promise<DecodeError | undefined> {
    if (this.#codec === undefined) return undefined;
    const d = this.#decoded ?? this.#decode();
    if (d instanceof PulseError) return d;
    if (isPending(d))
      return d.then(
        () => undefined,
        (err: unknown) => err as DecodeError,
      );
    return undefined;
  }

  /** Decodes once; the outcome is kept (a failure too, so every access throws the same error). */
  #decode(): Decoded | DecodeError {
    if (this.#codec === undefined) {
      this.#decoded = { value: this.payload };
      return this.#decoded;
    }
    try {
      const d = this.#codec.decode(this.eventName, this.id, this.payload);
      if (isPending(d)) {
        this.#decoded = d.then(
          (x) => {
            this.#decoded = x;
            return x;
          },
          (err: unknown) => {
            const failure = this.#failure(err);
            this.#decoded = failure;
            throw failure;
          },
        );
        // Read through `data` only, the promise has no other handler: no unhandled rejection.
        this.#decoded.catch(() => {});
      } else this.#decoded = d;
    } catch (err) {
      this.#decoded = this.#failure(err);
    }
    return this.#decoded;
  }

  /**
   * Any failure to decode as a DecodeError: the codec wraps what it knows,
   * and anything else (a bug, a value no one expected) must still make
   * `data` throw and `process()` dead-letter, never read as `undefined`.
   */
  #failure(err: unknown): DecodeError {
    if (err instanceof DecodeError) return err;
    return new DecodeError(`event ${this.id} (${this.eventName}): decoding failed: ${errorText(err)}`, {
      cause: err,
      eventName: this.eventName,
      eventId: this.id,
    });
  }

  /** Name of the sink that delivered the event; undefined for reader events. */
  get sinkName(): string | undefined {
    return undefined;
  }

  /** Creation time, from the milliseconds of the ID. */
  get createdAt(): Date {
    return new Date(idTime(this.id));
  }

  /** The payload decoded as UTF-8. */
  text(): string {
    return this.payload.toString('utf8');
  }

  /**
   * The payload parsed as JSON.
   * @throws DecodeError when the payload is not JSON (its `cause` is the `SyntaxError`).
   */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (err) {
      throw new DecodeError(`event ${this.id} (${this.eventName}): the payload is not JSON: ${errorText(err)}`, {
        cause: err,
        eventName: this.eventName,
        eventId: this.id,
      });
    }
  }
}

/**
 * An event delivered by a sink: it must be acknowledged (unless the sink is
 * `noAck`). On a typed stream, `Name` and `Data` are one event name of its
 * map and that event's type.
 */
export class SinkEvent<Name extends string = string, Data = unknown> extends Event<Name, Data> {
  readonly #sinkName: string;
  readonly #owner: EventOwner;
  /** Acked or nacked through this instance's sink (`processBatch` settles the rest). */
  #settled = false;
  /** Handed to a subscriber (see giveBack.ts: the others are given back when dropped). */
  #taken = false;

  /** @internal */
  constructor(init: EventInit, sinkName: string, owner: EventOwner) {
    super(init);
    this.#sinkName = sinkName;
    this.#owner = owner;
  }

  /** Name of the sink that delivered the event. */
  override get sinkName(): string {
    return this.#sinkName;
  }

  /** @internal True once acked or nacked (see `processBatch`). */
  get settled(): boolean {
    return this.#settled;
  }

  /** @internal Called by the sink on an ack or a nack of this event. */
  markSettled(): void {
    this.#settled = true;
  }

  /** @internal True once a subscription handed it out. */
  get taken(): boolean {
    return this.#taken;
  }

  /** @internal Called by a subscription as it hands the event out. */
  markTaken(): void {
    this.#taken = true;
  }

  /** The sink that acknowledges this event (Go's `Event.Acker`). */
  get acker(): Acker {
    return this.#owner;
  }

  /** Acknowledges the event: same as `sink.ack(event)`. Resolves at once for `noAck` sinks. */
  ack(): Promise<void> {
    return this.#owner.ack(this);
  }

  /**
   * Gives the event back: it is redelivered after `delayMs` (0: as soon as possible)
   * instead of after the ack grace period. One that Redis lost under the
   * handler (restarted from an older snapshot or empty, or its stream
   * expired or was deleted) cannot be: it is counted in `counters.lost` and
   * reported, and the nack resolves (an instance that did not hold the
   * stream's lease, whose holder may have counted it already, says it may be
   * lost instead). One Redis loses in a rollback after the nack, while it
   * waits for its redelivery, is said maybe lost by the instance that nacked
   * it (with its ID), not counted: another instance may have handled it.
   */
  nack(options?: NackOptions): Promise<void> {
    return this.#owner.nack(this, options);
  }

  /**
   * Tells the sink the handler is still working, so the event is not
   * redelivered during long work (call it well within the grace period).
   * Rejects with `NotOwnedError` when the event is no longer this consumer's
   * (the grace period ran out and another consumer claimed it, or it was
   * acked, dead-lettered or reported lost): stop working on it. Resolves for
   * an event Redis lost under the handler (restarted from an older snapshot:
   * neither the entry nor its pending entry is there, nobody else has it).
   */
  inProgress(): Promise<void> {
    return this.#owner.inProgress(this);
  }
}
