/** Publishing: many `add` calls in flight, and awaited one at a time, against raw XADD on the same client. */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import {
  publishOneByOneRaw,
  publishOneByOneWithLibrary,
  publishRaw,
  publishWithLibrary,
  type RawPublishMode,
} from '../producers.js';
import { streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

const RAW_MODES: readonly RawPublishMode[] = ['pipeline', 'concurrent'];

/** Milliseconds taken by `fn`, then the server is emptied. */
async function timed(ctx: CaseContext, events: number, what: string, fn: () => Promise<void>): Promise<number> {
  try {
    const t0 = performance.now();
    await withDeadline(fn(), deadlineFor(events), what);
    return performance.now() - t0;
  } finally {
    await flush(ctx.client);
  }
}

function libraryStream(ctx: CaseContext, prefix: string): Stream {
  // No trimming, exactly like the raw XADD it is compared with.
  return new Stream(uniqueName(prefix), ctx.client.redis, { maxLen: 0 });
}

/** Events of each try when picking the faster raw mode. */
const PICK_EVENTS = 10_000;

/**
 * Library: windows of `window` outstanding `add` promises. Baseline: raw XADD
 * in batches of `window`, with whichever of the client's pipeline and
 * `window` concurrent commands is faster on this machine (tried twice each
 * first, which also warms up the baseline).
 */
export async function publishCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { events, window, runs, warmupEvents } = ctx.options;
  const library = async (n: number): Promise<number> => {
    const stream = libraryStream(ctx, 'publish');
    return rate(n, await timed(ctx, n, 'library publish', () => publishWithLibrary(stream, n, ctx.payload, window)));
  };
  const raw = async (n: number, mode: RawPublishMode): Promise<number> => {
    const key = streamKey(uniqueName('publish-raw'));
    return rate(n, await timed(ctx, n, `raw ${mode} publish`, () => publishRaw(ctx.client, key, n, ctx.payload, window, mode)));
  };
  await library(warmupEvents);
  const tries = new Map<RawPublishMode, number>();
  for (let i = 0; i < 2; i++) {
    for (const mode of RAW_MODES) tries.set(mode, Math.max(tries.get(mode) ?? 0, await raw(Math.min(events, PICK_EVENTS), mode)));
  }
  const best = [...tries].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'pipeline';
  ctx.log(`${ctx.kind}: raw publish baseline uses ${best === 'pipeline' ? 'the client pipeline' : 'concurrent commands'}`);
  const m = await alternate(
    runs,
    () => library(events),
    () => raw(events, best),
  );
  return throughputResult(
    ctx,
    {
      case: 'publish',
      title: `publish, ${window} in flight`,
      baselineName: `raw XADD in batches of ${window}, ${best === 'pipeline' ? (ctx.kind === 'ioredis' ? 'pipeline().exec()' : 'multi().execAsPipeline()') : `${window} concurrent commands`} (the faster here)`,
      events,
    },
    m,
  );
}

/** Library: awaited `add` in a loop. Baseline: awaited raw XADD. */
export async function publishOneAtATimeCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { oneAtATimeEvents: events, runs } = ctx.options;
  const library = async (n: number): Promise<number> => {
    const stream = libraryStream(ctx, 'publish-one');
    return rate(
      n,
      await timed(ctx, n, 'library publish one at a time', () => publishOneByOneWithLibrary(stream, n, ctx.payload)),
    );
  };
  const raw = async (n: number): Promise<number> => {
    const key = streamKey(uniqueName('publish-one-raw'));
    return rate(n, await timed(ctx, n, 'raw publish one at a time', () => publishOneByOneRaw(ctx.client, key, n, ctx.payload)));
  };
  const warmup = Math.min(events, ctx.options.warmupEvents / 5);
  await library(warmup);
  await raw(warmup);
  const m = await alternate(
    runs,
    () => library(events),
    () => raw(events),
  );
  return throughputResult(
    ctx,
    { case: 'publish-one', title: 'publish, one at a time', baselineName: 'raw awaited XADD', events },
    m,
  );
}
