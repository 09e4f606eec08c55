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
 * Metric attributes, one frozen object per distinct set: the SDK keys its
 * series by them, and a fresh object per event would cost an allocation
 * (and a hash) each time for the same few sets.
 */
export class AttributeSets {
  readonly #sets = new Map<string, Attributes>();

  get(operation: 'send' | 'process', stream: string, sink: string | undefined, error: string | undefined): Attributes {
    const key = `${operation}\n${stream}\n${sink ?? ''}\n${error ?? ''}`;
    let set = this.#sets.get(key);
    if (!set) {
      const a: Attributes = {
        [ATTR.system]: SYSTEM,
        [ATTR.operationName]: operation,
        [ATTR.destination]: stream,
      };
      if (sink !== undefined) a[ATTR.consumerGroup] = sink;
      if (error !== undefined) a[ATTR.errorType] = error;
      set = Object.freeze(a);
      this.#sets.set(key, set);
    }
    return set;
  }
}
