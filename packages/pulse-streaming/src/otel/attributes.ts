/**
 * Span and metric names and attributes, from the OpenTelemetry messaging
 * semantic conventions (plus `pulse.*` for what they have no name for), and
 * the per-destination state that keeps their cost off each event.
 */
import { type Attributes, SpanKind, type SpanOptions } from '@opentelemetry/api';
import { PulseError } from '../errors.js';
import { cutText } from '../internal/cutText.js';

export const SYSTEM = 'redis';

export const ATTR = {
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  consumerGroup: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  clientId: 'messaging.client.id',
  batchCount: 'messaging.batch.message_count',
  eventName: 'pulse.event.name',
  deliveryCount: 'pulse.delivery.count',
  errorType: 'error.type',
} as const;

export const METRIC = {
  sent: 'messaging.client.sent.messages',
  consumed: 'messaging.client.consumed.messages',
  processDuration: 'messaging.process.duration',
} as const;

/**
 * Longest `pulse.event.name` on a span, in UTF-16 code units: a longer
 * event name is cut to this length, its last character an ellipsis (`…`).
 * An event name is whatever the producer wrote in the entry's `n` field
 * (another service's raw XADD, a Go producer), and a span attribute is
 * exported as it is: a 1 MB name on every process span of every delivery
 * made OTLP export batches larger than a collector accepts (4 MB over
 * gRPC by default), refusing the other spans of the batch with them.
 */
export const MAX_EVENT_NAME_ATTRIBUTE = 256;

/** `name` as the `pulse.event.name` attribute: cut to {@link MAX_EVENT_NAME_ATTRIBUTE}, with `…` in place of what was cut. */
export function eventNameAttribute(name: string): string {
  return cutText(name, MAX_EVENT_NAME_ATTRIBUTE);
}

/** Bucket boundaries the conventions advise for `messaging.process.duration` (seconds). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * `error.type`: the library's code of a `PulseError` that has one (a Redis
 * reply code such as `WRONGTYPE`, or `ADD_NOT_SENT` / `ADD_OUTCOME_UNKNOWN`
 * for a failed add: whether a retry is safe, which the class name alone did
 * not tell), else the error's class name (its `name`), `_OTHER` for a thrown
 * non-error, or an error whose name cannot be read (a getter that throws).
 * Codes and class names are few: fit for a metric attribute.
 */
export function errorType(err: unknown): string {
  try {
    if (err instanceof PulseError && typeof err.code === 'string' && err.code !== '') return err.code;
    if (err instanceof Error) return (typeof err.name === 'string' && err.name) || err.constructor.name || 'Error';
  } catch {
    // Anything may be thrown; instrumentation must not fail on it.
  }
  return '_OTHER';
}

/** Distinct error types kept per destination: past it (names made up per error...) sets are built each time. */
const MAX_ERROR_TYPES = 64;

/**
 * What one operation on one destination (`send` to a stream, or `process`
 * of a stream by a sink) shares across its events, built on its first event:
 * the span name, the span's start attributes, the metric attributes and the
 * count of messages. Every event of a busy stream would otherwise build the
 * same strings and objects again.
 */
export class Destination {
  /** The stream; undefined for a `processBatch()` call whose events came from several streams. */
  readonly stream: string | undefined;
  /** `send <stream>` or `process <stream>`; `process` alone without a stream. */
  readonly spanName: string;
  /**
   * The attributes a span starts with: those the conventions want at
   * creation because a sampler may decide on them. The per-event ones
   * (message ID, event name...) are set only on a span that records.
   */
  readonly spanAttributes: Attributes;
  /** The options a span of this destination starts with (kind and {@link spanAttributes}), shared: the SDK only reads them. */
  readonly spanOptions: SpanOptions;
  /** The metric attributes of an operation that did not fail. */
  readonly metricAttributes: Attributes;
  /** Messages sent or consumed: counted here, reported when the SDK collects (see `registerOpenTelemetry`). */
  count = 0;
  readonly #failed = new Map<string, { readonly attributes: Attributes; count: number }>();

  /**
   * @param stream undefined for a batch of several streams: the messaging
   * conventions name such a span after the operation alone and give it no
   * `messaging.destination.name`, which must apply to every message.
   */
  constructor(operation: 'send' | 'process', stream: string | undefined, sink: string | undefined) {
    this.stream = stream;
    this.spanName = stream === undefined ? operation : `${operation} ${stream}`;
    const metric: Attributes = { [ATTR.system]: SYSTEM, [ATTR.operationName]: operation };
    if (stream !== undefined) metric[ATTR.destination] = stream;
    if (sink !== undefined) metric[ATTR.consumerGroup] = sink;
    // Shared, never changed, but not frozen: the SDK reads their keys on every record and span start,
    // and V8 lists a frozen object's keys more slowly (about 10% of a histogram record).
    this.metricAttributes = metric;
    this.spanAttributes = { ...metric, [ATTR.operationType]: operation };
    const kind = operation === 'send' ? SpanKind.PRODUCER : SpanKind.CONSUMER;
    this.spanOptions = Object.freeze({ kind, attributes: this.spanAttributes });
  }

  /** The metric attributes of an operation that failed with `type` (`error.type`). */
  failedAttributes(type: string): Attributes {
    return this.#failedEntry(type).attributes;
  }

  /** Counts `n` messages of an operation that failed with `type`. */
  countFailed(type: string, n: number): void {
    this.#failedEntry(type).count += n;
  }

  /** Reports the counts: the success series, then one per error type. */
  observe(report: (n: number, attributes: Attributes) => void): void {
    if (this.count > 0) report(this.count, this.metricAttributes);
    for (const f of this.#failed.values()) if (f.count > 0) report(f.count, f.attributes);
  }

  #failedEntry(type: string): { readonly attributes: Attributes; count: number } {
    let entry = this.#failed.get(type);
    if (!entry) {
      entry = { attributes: { ...this.metricAttributes, [ATTR.errorType]: type }, count: 0 };
      // Past the bound, the count lands in the `_OTHER` series rather than growing the map.
      if (this.#failed.size < MAX_ERROR_TYPES || type === '_OTHER') this.#failed.set(type, entry);
      else return this.#failedEntry('_OTHER');
    }
    return entry;
  }
}

/**
 * How many destinations one generation keeps (see {@link Generations}): the
 * OpenTelemetry SDK's default cardinality limit of a metric. Tests lower it.
 */
export const destinationLimits = { perGeneration: 2000 };

/**
 * A map that forgets what went unused: entries live in the current
 * generation; once it holds `destinationLimits.perGeneration`, it becomes the
 * previous one and the one before is dropped. An entry used again is moved
 * to the current generation, so what a service keeps using stays (its count
 * with it) however many names come and go; a name unused for a whole
 * generation is forgotten (its series starts again from 0 if it comes back,
 * a counter reset metric backends handle). Without it, a service making a
 * stream per job or session kept about 800 bytes per name ever used for as
 * long as it stayed registered, and each collection walked them all.
 */
class Generations<V> {
  #current = new Map<string, V>();
  #previous = new Map<string, V>();

  /** The value of `key` (moved to the current generation), or undefined when this map has none (or forgot it). */
  get(key: string): V | undefined {
    const v = this.#current.get(key);
    if (v !== undefined) return v;
    const old = this.#previous.get(key);
    if (old === undefined) return undefined;
    this.#previous.delete(key);
    this.set(key, old);
    return old;
  }

  /** Sets `key` in the current generation, which becomes the previous one first if full. */
  set(key: string, value: V): void {
    if (this.#current.size >= destinationLimits.perGeneration) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(key, value);
  }

  *values(): IterableIterator<V> {
    yield* this.#previous.values();
    yield* this.#current.values();
  }
}

/** The {@link Destination}s of one registration: per stream for `send`, per stream and sink for `process`. */
export class Destinations {
  readonly #sends = new Generations<Destination>();
  readonly #processes = new Generations<Map<string, Destination>>();
  /** Per sink: its `processBatch()` calls over several streams. Never counted (their events are, per stream). */
  readonly #mixed = new Generations<Destination>();

  // A lookup per event, as before; the closures of a "get or make" would cost an allocation per add.
  send(stream: string): Destination {
    let d = this.#sends.get(stream);
    if (!d) {
      d = new Destination('send', stream, undefined);
      this.#sends.set(stream, d);
    }
    return d;
  }

  process(stream: string, sink: string): Destination {
    let bySink = this.#processes.get(stream);
    if (!bySink) {
      bySink = new Map();
      this.#processes.set(stream, bySink);
    }
    let d = bySink.get(sink);
    if (!d) {
      d = new Destination('process', stream, sink);
      bySink.set(sink, d);
    }
    return d;
  }

  /** A `processBatch()` call of `sink` whose events came from several streams. */
  processMixed(sink: string): Destination {
    let d = this.#mixed.get(sink);
    if (!d) {
      d = new Destination('process', undefined, sink);
      this.#mixed.set(sink, d);
    }
    return d;
  }

  /** Every send destination, for the sent counter's callback. */
  sends(): IterableIterator<Destination> {
    return this.#sends.values();
  }

  /** Every process destination, for the consumed counter's callback. */
  *processes(): IterableIterator<Destination> {
    for (const bySink of this.#processes.values()) yield* bySink.values();
  }
}
