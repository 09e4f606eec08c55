/** Summaries of repeated measurements and latency percentiles. */

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every run, in the order measured. */
  readonly runs: readonly number[];
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('no measurements');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number, runs: [...values] };
}

/** Events per second of `events` handled in `ms` milliseconds. */
export function rate(events: number, ms: number): number {
  return ms > 0 ? (events * 1000) / ms : 0;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Nearest-rank percentiles of latencies in milliseconds. */
export function percentiles(samples: Float64Array): Percentiles {
  if (samples.length === 0) throw new Error('no latency samples');
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sorted[sorted.length - 1] as number };
}

/** Runs `library` and `baseline` alternately `runs` times, so that a burst of load hits both alike. */
export async function alternateRuns<T>(
  runs: number,
  library: (run: number) => Promise<T>,
  baseline: (run: number) => Promise<T>,
): Promise<{ library: T[]; baseline: T[] }> {
  const lib: T[] = [];
  const base: T[] = [];
  for (let run = 0; run < runs; run++) {
    // Every other round starts with the baseline, so neither side always runs on a warmer server.
    if (run % 2 === 0) {
      lib.push(await library(run));
      base.push(await baseline(run));
    } else {
      base.push(await baseline(run));
      lib.push(await library(run));
    }
  }
  return { library: lib, baseline: base };
}

/** {@link alternateRuns} for rates: the summaries of both sides. */
export async function alternate(
  runs: number,
  library: (run: number) => Promise<number>,
  baseline: (run: number) => Promise<number>,
): Promise<{ library: Summary; baseline: Summary }> {
  const m = await alternateRuns(runs, library, baseline);
  return { library: summarize(m.library), baseline: summarize(m.baseline) };
}

/**
 * Runs each measurement once per round for `runs` rounds, each round starting
 * one measurement further along, so that none always runs first or on the
 * warmest server; resolves to the summary of each, in the given order.
 */
export async function rotate(runs: number, measurements: readonly ((run: number) => Promise<number>)[]): Promise<Summary[]> {
  const values = measurements.map((): number[] => []);
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < measurements.length; i++) {
      const j = (run + i) % measurements.length;
      const measure = measurements[j] as (run: number) => Promise<number>;
      values[j]?.push(await measure(run));
    }
  }
  return values.map(summarize);
}
