/** What every case gets: the server, one client of the kind under test, the options and a payload. */
import type { BenchClient, ClientKind } from '../clients.js';
import type { BenchOptions } from '../options.js';
import type { ThroughputResult } from '../results.js';
import type { Summary } from '../stats.js';

export interface CaseContext {
  readonly url: string;
  readonly kind: ClientKind;
  readonly options: BenchOptions;
  /** The user's client: handed to `new Stream`, and used for the raw baselines. */
  readonly client: BenchClient;
  readonly payload: Buffer;
  /** A progress line on stderr (stdout is kept for the results). */
  log(message: string): void;
}

let seq = 0;

/** A stream name never used before in this process. */
export function uniqueName(prefix: string): string {
  return `bench:${prefix}:${process.pid}:${(seq++).toString(36)}`;
}

/** Rejects when `promise` has not settled after `ms`, naming `what`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Longest wait for a worker process to start or to set up a run. */
export const READY_MS = 30_000;

/** A generous bound for handling `events` events (never below 30 s), to fail rather than hang. */
export function deadlineFor(events: number): number {
  return Math.max(30_000, events / 2);
}

/** A throughput result from the two sides' summaries; the ratio is library / baseline (medians). */
export function throughputResult(
  ctx: CaseContext,
  what: Pick<ThroughputResult, 'case' | 'title' | 'baselineName' | 'events'>,
  m: { library: Summary; baseline: Summary },
): ThroughputResult {
  return { type: 'throughput', client: ctx.kind, ...what, ...m, ratio: m.library.median / m.baseline.median };
}
