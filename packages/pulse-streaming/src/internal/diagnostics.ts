/**
 * The hooks tracing and metrics attach to: `node:diagnostics_channel`
 * tracing channels (the hook ioredis and node-redis use for their own
 * tracing). The core publishes, and never imports OpenTelemetry;
 * `pulse-streaming/otel` subscribes. With no subscriber, each add or handler
 * call costs one `hasSubscribers` check.
 *
 * Each channel is a `TracingChannel`: `start` is published synchronously in
 * the caller's async context before the work starts, `asyncEnd` when it
 * settled (`result` or `error` set on the message), `error` before that when
 * it failed. The messages are the shapes below; subscribers may set the
 * fields marked mutable, synchronously, from `start`.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import type { SinkEvent } from '../event.js';

/** Channel names, stable: other tooling may subscribe too. */
export const ADD_CHANNEL = 'pulse-streaming:add';
export const PROCESS_CHANNEL = 'pulse-streaming:process';
export const PROCESS_BATCH_CHANNEL = 'pulse-streaming:processBatch';

/** Message of {@link ADD_CHANNEL}: one `stream.add`. */
export interface AddMessage {
  readonly streamName: string;
  readonly eventName: string;
  readonly topic: string | undefined;
  readonly dedupId: string | undefined;
  /**
   * Mutable: the event's headers. A `start` subscriber may add some (trace
   * context: `traceparent`, `tracestate`); they are checked and written with
   * the event. A copy: the caller's object is never changed.
   */
  headers: Record<string, string>;
  /** Set by the channel: the ID the add resolved to (undefined: not added, `onlyIfStreamExists`). */
  result?: unknown;
  /** Set by the channel when the add failed. */
  error?: unknown;
}

/** Runs `fn` in the subscriber's context (e.g. its active span); set from `start`. */
export type RunInContext = <T>(fn: () => T) => T;

/** Message of {@link PROCESS_CHANNEL}: one handler call of `sink.process()`. */
export interface ProcessMessage {
  readonly event: SinkEvent;
  /** The sink (consumer group). */
  readonly sinkName: string;
  /** This sink instance's Redis consumer name. */
  readonly consumerName: string;
  /** Mutable: set from `start` to run the handler inside a context of the subscriber's. */
  runInContext?: RunInContext;
  /** Set by the channel when the handler threw (or its promise rejected). */
  error?: unknown;
  result?: unknown;
}

/**
 * Message of {@link PROCESS_BATCH_CHANNEL}: one handler call of
 * `sink.processBatch()`. As {@link ProcessMessage}, with the events of the
 * batch (at least one; a sink may read several streams, so their
 * `streamName`s may differ).
 */
export interface ProcessBatchMessage {
  readonly events: readonly SinkEvent[];
  readonly sinkName: string;
  readonly consumerName: string;
  runInContext?: RunInContext;
  error?: unknown;
  result?: unknown;
}

export const addChannel = tracingChannel<unknown, AddMessage>(ADD_CHANNEL);
export const processChannel = tracingChannel<unknown, ProcessMessage>(PROCESS_CHANNEL);
export const processBatchChannel = tracingChannel<unknown, ProcessBatchMessage>(PROCESS_BATCH_CHANNEL);

/**
 * Runs a handler call under {@link processChannel} when something listens,
 * else just calls it: `await traced(...)` in place of `await handler(event)`.
 */
export function traceProcess(
  event: SinkEvent,
  sinkName: string,
  consumerName: string,
  handler: (event: SinkEvent) => unknown,
): unknown {
  if (!processChannel.hasSubscribers) return handler(event);
  const msg: ProcessMessage = { event, sinkName, consumerName };
  return processChannel.tracePromise(
    async () => (msg.runInContext ? msg.runInContext(() => handler(event)) : handler(event)),
    msg,
  );
}

/**
 * As {@link traceProcess}, for a `processBatch()` handler call: `await
 * traceProcessBatch(events, sink.name, sink.consumerName, handler)` in place
 * of `await handler(events)`.
 */
export function traceProcessBatch(
  events: readonly SinkEvent[],
  sinkName: string,
  consumerName: string,
  handler: (events: SinkEvent[]) => unknown,
): unknown {
  const list = events as SinkEvent[];
  if (!processBatchChannel.hasSubscribers) return handler(list);
  const msg: ProcessBatchMessage = { events, sinkName, consumerName };
  return processBatchChannel.tracePromise(
    async () => (msg.runInContext ? msg.runInContext(() => handler(list)) : handler(list)),
    msg,
  );
}
