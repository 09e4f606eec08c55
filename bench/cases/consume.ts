/**
 * Consuming a stream that already holds the events: a sink acking every
 * event, and a reader, against raw XREADGROUP + XACK and raw XREAD.
 */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { type BenchClient, connectClient } from '../clients.js';
import { consumeRawGroup, consumeRawXread, consumeWithReader, consumeWithSink, READ_COUNT } from '../consumers.js';
import { fill, streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

const GROUP = 'bench';

/** A stream holding `events` events; resolves to its name. Not timed. */
async function filledStream(ctx: CaseContext, prefix: string, events: number): Promise<string> {
  const name = uniqueName(prefix);
  await fill(ctx.client, streamKey(name), events, ctx.payload, ctx.options.window);
  return name;
}

/** Events per second of `consume`, which must handle `events` events within {@link deadlineFor}. */
export async function measure(events: number, what: string, consume: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await withDeadline(consume(), deadlineFor(events), what);
  return rate(events, performance.now() - t0);
}

async function withReadConnection<T>(ctx: CaseContext, fn: (conn: BenchClient) => Promise<T>): Promise<T> {
  // The library reads on a connection of its own; so does the baseline.
  const conn = await connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader');
  try {
    return await fn(conn);
  } finally {
    conn.close();
  }
}

async function sinkRun(ctx: CaseContext, events: number): Promise<number> {
  const name = await filledStream(ctx, 'sink', events);
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const sink = await stream.newSink(GROUP, { startAt: 'oldest', maxPolled: READ_COUNT });
  try {
    return await measure(events, 'library sink', () => consumeWithSink(sink, events));
  } finally {
    await sink.close();
    await flush(ctx.client);
  }
}

async function rawGroupRun(ctx: CaseContext, events: number): Promise<number> {
  const key = streamKey(await filledStream(ctx, 'sink-raw', events));
  await ctx.client.send(['XGROUP', 'CREATE', key, GROUP, '0']);
  try {
    return await withReadConnection(ctx, (reader) =>
      measure(events, 'raw group consumer', () =>
        consumeRawGroup({ reader, acker: ctx.client, key, group: GROUP, consumer: 'raw' }, events),
      ),
    );
  } finally {
    await flush(ctx.client);
  }
}

async function readerRun(ctx: CaseContext, events: number): Promise<number> {
  const name = await filledStream(ctx, 'reader', events);
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const reader = await stream.newReader({ startAt: 'oldest', maxPolled: READ_COUNT });
  try {
    return await measure(events, 'library reader', () => consumeWithReader(reader, events));
  } finally {
    await reader.close();
    await flush(ctx.client);
  }
}

async function rawReadRun(ctx: CaseContext, events: number): Promise<number> {
  const key = streamKey(await filledStream(ctx, 'reader-raw', events));
  try {
    return await withReadConnection(ctx, (conn) => measure(events, 'raw reader', () => consumeRawXread(conn, key, events)));
  } finally {
    await flush(ctx.client);
  }
}

/** Library: a sink with maxPolled 1000, `ev.ack()` per event. Baseline: XREADGROUP COUNT 1000 + one XACK per batch. */
export async function sinkConsumeCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { events, runs } = ctx.options;
  const warmup = ctx.options.warmupEvents;
  await sinkRun(ctx, warmup);
  await rawGroupRun(ctx, warmup);
  const m = await alternate(
    runs,
    () => sinkRun(ctx, events),
    () => rawGroupRun(ctx, events),
  );
  return throughputResult(
    ctx,
    {
      case: 'sink',
      title: 'sink consume, ack each event',
      baselineName: `raw XREADGROUP COUNT ${READ_COUNT} + one XACK per batch`,
      events,
    },
    m,
  );
}

/** Library: a reader with maxPolled 1000. Baseline: XREAD COUNT 1000. */
export async function readerConsumeCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { events, runs } = ctx.options;
  const warmup = ctx.options.warmupEvents;
  await readerRun(ctx, warmup);
  await rawReadRun(ctx, warmup);
  const m = await alternate(
    runs,
    () => readerRun(ctx, events),
    () => rawReadRun(ctx, events),
  );
  return throughputResult(
    ctx,
    { case: 'reader', title: 'reader consume', baselineName: `raw XREAD COUNT ${READ_COUNT}`, events },
    m,
  );
}
