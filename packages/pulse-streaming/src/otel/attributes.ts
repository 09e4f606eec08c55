/**
 * Span and metric names and attributes, from the OpenTelemetry messaging
 * semantic conventions (plus `pulse.*` for what they have no name for).
 */
import type { Attributes } from '@opentelemetry/api';

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

/** Bucket boundaries the conventions advise for `messaging.process.duration` (seconds). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** `error.type`: the error's class name (its `name`), `_OTHER` for a thrown non-error. */
export function errorType(err: unknown): string {
  if (err instanceof Error) return err.name || err.constructor.name || 'Error';
  return '_OTHER';
}

/**
 * Attributes, one frozen object per distinct set: the SDK keys its series by
 * them, and a fresh object per event would cost an allocation each time
 * for the same few sets. Nested maps rather than a joined string key: no
 * string built per event either.
 */
export class AttributeSets {
  readonly #metrics = new Map<string, Map<string, Attributes>>();
  readonly #sends = new Map<string, Map<string, Attributes>>();

  /** Metric attributes of an operation on `stream` (by `sink` for 'process'), failed with `error` or not. */
  get(operation: 'send' | 'process', stream: string, sink: string | undefined, error: string | undefined): Attributes {
    const key = `${operation}\n${sink ?? ''}\n${error ?? ''}`;
    return cached(this.#metrics, stream, key, () => {
      const a: Attributes = {
        [ATTR.system]: SYSTEM,
        [ATTR.operationName]: operation,
        [ATTR.destination]: stream,
      };
      if (sink !== undefined) a[ATTR.consumerGroup] = sink;
      if (error !== undefined) a[ATTR.errorType] = error;
      return a;
    });
  }

  /** Attributes a `send` span starts with. */
  send(stream: string, eventName: string): Attributes {
    return cached(this.#sends, stream, eventName, () => ({
      [ATTR.system]: SYSTEM,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'send',
      [ATTR.destination]: stream,
      [ATTR.eventName]: eventName,
    }));
  }
}

/** Distinct keys kept per stream: past it (event names made up per event...) sets are built each time. */
const MAX_PER_STREAM = 256;

function cached(maps: Map<string, Map<string, Attributes>>, stream: string, key: string, make: () => Attributes): Attributes {
  let byKey = maps.get(stream);
  if (!byKey) {
    byKey = new Map();
    maps.set(stream, byKey);
  }
  let set = byKey.get(key);
  if (!set) {
    set = Object.freeze(make());
    if (byKey.size < MAX_PER_STREAM) byKey.set(key, set);
  }
  return set;
}
