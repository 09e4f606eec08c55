/**
 * What idempotent publish costs: `add` with a `dedupId` (a fresh one per
 * event, so every add is recorded) against `add` without, both with
 * `window` adds in flight (merged into script calls) on a stream without
 * trimming, measured alternately in the same run.
 */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { EVENT_NAME } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

/** `events` adds, `window` in flight; with `dedup`, each with its own dedupId. */
async function publish(ctx: CaseContext, stream: Stream, events: number, dedup: boolean): Promise<void> {
  const { window } = ctx.options;
  const payload = ctx.payload;
  const pending: Promise<string>[] = [];
  for (let sent = 0; sent < events; sent += window) {
    pending.length = 0;
    const size = Math.min(window, events - sent);
    for (let i = 0; i < size; i++) {
      pending.push(dedup ? stream.add(EVENT_NAME, payload, { dedupId: `order-${sent + i}` }) : stream.add(EVENT_NAME, payload));
    }
    await Promise.all(pending);
  }
}

async function measure(ctx: CaseContext, events: number, dedup: boolean): Promise<number> {
  const stream = new Stream(uniqueName(dedup ? 'dedup' : 'no-dedup'), ctx.client.redis, { maxLen: 0 });
  try {
    const t0 = performance.now();
    await withDeadline(publish(ctx, stream, events, dedup), deadlineFor(events), dedup ? 'publish with dedupId' : 'publish');
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

export async function dedupCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { events, runs, warmupEvents, window } = ctx.options;
  await measure(ctx, warmupEvents, true);
  await measure(ctx, warmupEvents, false);
  const m = await alternate(
    runs,
    () => measure(ctx, events, true),
    () => measure(ctx, events, false),
  );
  return throughputResult(
    ctx,
    {
      case: 'dedup',
      title: `publish with a dedupId, ${window} in flight`,
      baselineName: 'publish without dedupId (same run)',
      events,
    },
    m,
  );
}
