import { NO_HEADERS } from './internal/headers.js';
import { idTime } from './internal/ids.js';

/** Options of {@link SinkEvent.nack}. */
export interface NackOptions {
  /**
   * Redeliver not before this many milliseconds (0: as soon as possible), and
   * not much later (within the sink's reclaim interval), delays longer than
   * the grace period included; honoured by every instance of the sink.
   * @defaultValue the ack grace period
   */
  delayMs?: number;
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
  deliveryCount?: number;
  /** Headers read from `h.*` fields; none when absent. */
  headers?: Record<string, string> | undefined;
}

/** A stream event, as delivered by a reader. */
export class Event {
  /** Redis entry ID, `<ms>-<seq>`. */
  readonly id: string;
  /** Name of the stream the event belongs to. */
  readonly streamName: string;
  /** Producer-defined event name (empty when the entry has none). */
  readonly eventName: string;
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

  constructor(init: EventInit) {
    this.id = init.id;
    this.streamName = init.streamName;
    this.eventName = init.eventName;
    this.topic = init.topic;
    this.payload = init.payload;
    this.deliveryCount = init.deliveryCount ?? 1;
    this.headers = init.headers ? Object.freeze(init.headers) : NO_HEADERS;
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

  /** The payload parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }
}

/** An event delivered by a sink: it must be acknowledged (unless the sink is `noAck`). */
export class SinkEvent extends Event {
  readonly #sinkName: string;
  readonly #owner: EventOwner;

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
   * instead of after the ack grace period.
   */
  nack(options?: NackOptions): Promise<void> {
    return this.#owner.nack(this, options);
  }

  /**
   * Tells the sink the handler is still working, so the event is not
   * redelivered during long work (call it well within the grace period).
   * Rejects with `NotOwnedError` when the event is no longer this consumer's
   * (the grace period ran out and another consumer claimed it, or it was
   * acked, dead-lettered or reported lost): stop working on it.
   */
  inProgress(): Promise<void> {
    return this.#owner.inProgress(this);
  }
}
