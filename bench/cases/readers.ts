/**
 * Many readers on one stream: every reader gets every event (fan-out), each
 * on a read connection of its own, against as many raw XREAD loops, each on a
 * connection of its own. Counted in deliveries (events x readers) per second.
 */
import { type Reader, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type BenchClient, connectClient } from '../clients.js';
import { consumeRawXread, consumeWithReader, READ_COUNT } from '../consumers.js';
import { fill, streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate } from '../stats.js';
import { measure } from './consume.js';
import { type CaseContext, throughputResult, uniqueName } from './context.js';

/** Readers of the `readers` case (the issue 19 target: 100 readers >= 0.9 x 100 raw XREAD loops). */
export const READERS = 100;

/** A stream holding `events` events (not timed); resolves to its name. */
async function filled(ctx: CaseContext, prefix: string, events: number): Promise<string> {
  const name = uniqueName(prefix);
  await fill(ctx.client, streamKey(name), events, ctx.payload, ctx.options.window);
  return name;
}

/**
 * `readers` library readers at `oldest` (maxPolled 1000) on a stream holding
 * `events` events, all reading at once; resolves to deliveries per second.
 * Creating the readers (and their connections) is not timed.
 */
export async function libraryReadersRun(ctx: CaseContext, readers: number, events: number): Promise<number> {
  const name = await filled(ctx, 'readers', events);
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const all: Reader[] = [];
  try {
    for (let i = 0; i < readers; i++) all.push(await stream.newReader({ startAt: 'oldest', maxPolled: READ_COUNT }));
    return await measure(readers * events, 'library readers', async () => {
      await Promise.all(all.map((r) => consumeWithReader(r, events)));
    });
  } finally {
    await Promise.all(all.map((r) => r.close()));
    await flush(ctx.client);
  }
}

/** `readers` raw XREAD COUNT 1000 loops from `0-0`, each on its own connection (opened before timing). */
export async function rawReadersRun(ctx: CaseContext, readers: number, events: number): Promise<number> {
  const key = streamKey(await filled(ctx, 'readers-raw', events));
  const conns: BenchClient[] = [];
  try {
    for (let i = 0; i < readers; i++) conns.push(await connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader'));
    return await measure(readers * events, 'raw readers', async () => {
      await Promise.all(conns.map((c) => consumeRawXread(c, key, events)));
    });
  } finally {
    for (const c of conns) c.close();
    await flush(ctx.client);
  }
}

/** Events each reader reads in the `readers` case: a tenth of the case's events (100k deliveries per 1k). */
export function eventsPerReader(ctx: CaseContext): number {
  return Math.max(1000, Math.floor(ctx.options.events / 10));
}

/** Library: 100 readers of one stream. Baseline: 100 raw XREAD loops. */
export async function readersCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { runs } = ctx.options;
  const events = eventsPerReader(ctx);
  const warmup = Math.max(500, Math.floor(events / 5));
  await libraryReadersRun(ctx, READERS, warmup);
  await rawReadersRun(ctx, READERS, warmup);
  const m = await alternate(
    runs,
    () => libraryReadersRun(ctx, READERS, events),
    () => rawReadersRun(ctx, READERS, events),
  );
  return throughputResult(
    ctx,
    {
      case: 'readers',
      title: `${READERS} readers of one stream (deliveries/s)`,
      baselineName: `${READERS} raw XREAD COUNT ${READ_COUNT} loops, one connection each`,
      events: READERS * events,
    },
    m,
  );
}
