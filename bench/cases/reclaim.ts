/**
 * Reclaim (issue 19): a fresh sink instance takes over the pending list of a
 * consumer that died, against a raw `XAUTOCLAIM ... COUNT 1000` + `XACK`
 * loop on the same client. 10k and 100k pending events (the target is at
 * 100k), 500k in a full run only.
 */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { consumeWithSink } from '../consumers.js';
import { fill, streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

const GROUP = 'bench';
/** Short, so that the orphaned events are idle soon; the library's sweep runs every grace / 2. */
const GRACE_MS = 1000;
/** The raw loop's batch, as the issue measured it. */
const CLAIM_COUNT = 1000;

/** Largest XREADGROUP of the dead consumer (a 500k reply at once would take a lot of memory). */
const ORPHAN_READ = 10_000;

/**
 * A stream whose `events` events were read by consumer `dead` of the group,
 * and are idle for longer than the grace period now. Not timed.
 */
async function orphaned(ctx: CaseContext, events: number): Promise<string> {
  const name = uniqueName('reclaim');
  const key = streamKey(name);
  await fill(ctx.client, key, events, ctx.payload, ctx.options.window);
  await ctx.client.send(['XGROUP', 'CREATE', key, GROUP, '0']);
  for (let read = 0; read < events; read += ORPHAN_READ) {
    await ctx.client.send(['XREADGROUP', 'GROUP', GROUP, 'dead', 'COUNT', String(ORPHAN_READ), 'STREAMS', key, '>']);
  }
  await new Promise((r) => setTimeout(r, GRACE_MS + 50));
  return name;
}

async function libraryRun(ctx: CaseContext, events: number): Promise<number> {
  const name = await orphaned(ctx, events);
  try {
    const t0 = performance.now();
    // A fresh instance, from its creation to the last ack.
    const sink = await new Stream(name, ctx.client.redis, { maxLen: 0 }).newSink(GROUP, { ackGracePeriodMs: GRACE_MS });
    try {
      await withDeadline(consumeWithSink(sink, events), deadlineFor(events), 'library reclaim');
      return rate(events, performance.now() - t0);
    } finally {
      await sink.close();
    }
  } finally {
    await flush(ctx.client);
  }
}

/** XAUTOCLAIM COUNT 1000 then XACK of what it claimed, until the cursor comes back to 0-0. */
async function rawLoop(ctx: CaseContext, key: string, events: number): Promise<void> {
  let cursor = '0-0';
  let claimed = 0;
  for (;;) {
    const reply = (await ctx.client.send([
      'XAUTOCLAIM',
      key,
      GROUP,
      'raw',
      String(GRACE_MS),
      cursor,
      'COUNT',
      String(CLAIM_COUNT),
    ])) as unknown[];
    cursor = String(reply[0]);
    const ids = ((reply[1] ?? []) as unknown[]).filter(Array.isArray).map((e) => String((e as unknown[])[0]));
    if (ids.length > 0) await ctx.client.send(['XACK', key, GROUP, ...ids]);
    claimed += ids.length;
    if (cursor === '0-0') break;
  }
  if (claimed < events) throw new Error(`raw loop claimed ${claimed} of ${events} events`);
}

async function rawRun(ctx: CaseContext, events: number): Promise<number> {
  const key = streamKey(await orphaned(ctx, events));
  try {
    const t0 = performance.now();
    await withDeadline(rawLoop(ctx, key, events), deadlineFor(events), 'raw reclaim');
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

/** The pending-list sizes of a run: 500k only in a full run. */
export function reclaimSizes(quick: boolean): number[] {
  return quick ? [10_000, 100_000] : [10_000, 100_000, 500_000];
}

export async function reclaimCases(ctx: CaseContext): Promise<ThroughputResult[]> {
  const out: ThroughputResult[] = [];
  for (const events of reclaimSizes(ctx.options.quick)) {
    ctx.log(`${ctx.kind}: reclaim of ${events.toLocaleString('en-US')} pending events`);
    // Each run fills a stream and waits a grace period: fewer runs for the largest list.
    const runs = events >= 500_000 ? Math.min(ctx.options.runs, 3) : ctx.options.runs;
    const m = await alternate(
      runs,
      () => libraryRun(ctx, events),
      () => rawRun(ctx, events),
    );
    out.push(
      throughputResult(
        ctx,
        {
          case: 'reclaim',
          title: `fresh instance takes over ${events.toLocaleString('en-US')} pending events`,
          baselineName: `raw XAUTOCLAIM COUNT ${CLAIM_COUNT} + XACK loop`,
          events,
        },
        m,
      ),
    );
  }
  return out;
}
