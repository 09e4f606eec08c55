/**
 * What the demo and its consumer processes say to each other over the IPC
 * channel, and the timings they share.
 */

/** The demo's sink name. */
export const DEMO_SINK = 'demo-workers';
/** The demo's ack grace period: a killed consumer's events are redelivered after it. */
export const DEMO_GRACE_MS = 1500;
/** How often a consumer acks what it handled and reported. */
export const ACK_EVERY_MS = 500;
/** How often a consumer reports what it handled. */
export const REPORT_EVERY_MS = 100;

/** From a consumer process to the demo. */
export type FromWorker =
  | { readonly type: 'ready'; readonly consumer: string; readonly pid: number }
  /** Events handled since the last report (redeliveries included); `redelivered` is the sink's counter. */
  | { readonly type: 'handled'; readonly ids: readonly string[]; readonly redelivered: number }
  | { readonly type: 'closed'; readonly handled: number; readonly redelivered: number }
  /** With --trace: spans that ended since the last report. */
  | { readonly type: 'spans'; readonly spans: readonly TraceSpan[] }
  | { readonly type: 'failed'; readonly error: string };

/** From the demo to a consumer process. */
export type ToWorker = { readonly type: 'stop' };

/**
 * A finished span as `demo --trace` prints and exports it (`--trace=FILE`:
 * a JSON array of them), whichever process recorded it.
 */
export interface TraceSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Absent on a trace's root span. */
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  /** When it started, in ms since the epoch (fractional: the SDK's clock is finer). */
  readonly startMs: number;
  readonly durationMs: number;
  /** Which process of the demo recorded it: `producer`, or the consumer's label. */
  readonly process: string;
  readonly pid: number;
  readonly status: 'unset' | 'ok' | 'error';
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** The spans it links to (a batch's events). */
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
}
