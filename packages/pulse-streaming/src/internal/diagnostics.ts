/**
 * The hooks tracing and metrics attach to: `node:diagnostics_channel`
 * tracing channels (the hook ioredis and node-redis use for their own
 * tracing). The core publishes, and never imports OpenTelemetry;
 * `pulse-streaming/otel` subscribes. With no subscriber, each add or handler
 * call costs one `hasSubscribers` check.
 *
 * Each channel is a `TracingChannel`: `start` is published synchronously in
 * the caller's async context before the work starts, `asyncEnd` when it
 * settled (`result` or `error` set on the message; at once for a handler
 * that returned without a promise or threw), `error` before that when it
 * failed. The messages are the shapes below; subscribers may set the
 * fields marked mutable, synchronously, from `start`.
 */
import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { SinkEvent } from '../event.js';
import { headerFields } from './headers.js';
import { isThenable } from './thenable.js';

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

/** What {@link traced} needs of a message. */
interface Traced {
  runInContext?: RunInContext;
  error?: unknown;
  result?: unknown;
}

/**
 * `channel.tracePromise(fn, msg)` for a handler call, with the same events in
 * the same order (`start`; `error` if it threw; `end`; `asyncStart` and
 * `asyncEnd` once settled) and the same `start` stores, but a handler that
 * returns without a promise (the common case) costs no promise: it is
 * settled at once. A handler that throws synchronously also settles
 * (`asyncEnd` with `error`), as an `async` handler's rejection would: a
 * subscriber that ends its work at `asyncEnd` sees every call end.
 */
function traced<M extends Traced>(ch: TracingChannel<unknown, M>, msg: M, call: () => unknown): unknown {
  const settle = (): void => {
    ch.asyncStart.publish(msg);
    ch.asyncEnd.publish(msg);
  };
  return ch.start.runStores(msg, () => {
    let out: unknown;
    let thenable: boolean;
    try {
      out = msg.runInContext ? msg.runInContext(call) : call();
      // Here: reading `then` can throw (a revoked Proxy returned), and the call must still settle.
      thenable = isThenable(out);
    } catch (err) {
      msg.error = err;
      ch.error.publish(msg);
      ch.end.publish(msg);
      settle();
      throw err;
    }
    ch.end.publish(msg);
    if (!thenable) {
      msg.result = out;
      settle();
      return out;
    }
    return Promise.resolve(out).then(
      (result) => {
        msg.result = result;
        settle();
        return result;
      },
      (err: unknown) => {
        msg.error = err;
        ch.error.publish(msg);
        settle();
        throw err;
      },
    );
  });
}

/**
 * Runs an add under {@link addChannel}: `start` (where a subscriber may add
 * headers to `msg.headers`), then `add` with the fields of all the headers,
 * checked once (headers.ts), and `asyncEnd` once it settled. A subscriber's
 * bad header settles the add with the error, as Redis refusing it would: a
 * span started at `start` ends. One promise per add, no async closure.
 */
export function traceAdd(
  msg: AddMessage,
  add: (headers: readonly string[]) => Promise<string | undefined>,
): Promise<string | undefined> {
  return traced(addChannel, msg, () => add(headerFields(msg.headers))) as Promise<string | undefined>;
}

/**
 * Runs a handler call under {@link processChannel} when something listens,
 * else just calls it: `await traceProcess(...)` in place of `await handler(event)`.
 */
export function traceProcess(
  event: SinkEvent,
  sinkName: string,
  consumerName: string,
  handler: (event: SinkEvent) => unknown,
): unknown {
  if (!processChannel.hasSubscribers) return handler(event);
  return traced(processChannel, { event, sinkName, consumerName }, () => handler(event));
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
  return traced(processBatchChannel, { events, sinkName, consumerName }, () => handler(list));
}
