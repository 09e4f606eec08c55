/** What every scaling curve shares: measuring one point against its raw counterpart. */
import type { ScalingPoint } from '../results.js';
import { alternateRuns, summarize } from '../stats.js';
import type { CaseContext } from './context.js';

/** The consumer group of the sinks and raw group consumers. */
export const GROUP = 'bench';

/** A point's library and baseline, `ctx.options.scalingRuns` times each, alternately. */
export async function measurePoint(
  ctx: CaseContext,
  x: number,
  events: number,
  library: () => Promise<number>,
  baseline: () => Promise<number>,
  extra: Partial<Pick<ScalingPoint, 'shares'>> = {},
): Promise<ScalingPoint> {
  const m = await alternateRuns(ctx.options.scalingRuns, library, baseline);
  const lib = summarize(m.library);
  const base = summarize(m.baseline);
  ctx.log(
    `${ctx.kind}:   x=${x}: library ${lib.median.toFixed(0)}, raw ${base.median.toFixed(0)} (${(lib.median / base.median).toFixed(2)} x)`,
  );
  return { x, events, library: lib, baseline: base, ratio: lib.median / base.median, ...extra };
}

/** Events of stream `i` when `events` are spread round-robin over `streams` streams. */
export function shareOf(events: number, streams: number, i: number): number {
  return Math.floor(events / streams) + (i < events % streams ? 1 : 0);
}
