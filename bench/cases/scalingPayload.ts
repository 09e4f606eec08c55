/**
 * Payload size (100 B to 1 MB), publishing and consuming, in MB/s; and
 * readers per stream (1 to 100), in deliveries/s. See scaling.ts.
 */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { connectClient } from '../clients.js';
import { consumeRawGroup, consumeWithSink, READ_COUNT } from '../consumers.js';
import { publishRaw, publishWithLibrary } from '../producers.js';
import { fill, makePayload, streamKey } from '../rawStreams.js';
import type { ScalingPoint, ScalingResult } from '../results.js';
import { flush } from '../server.js';
import { rate } from '../stats.js';
import { measure } from './consume.js';
import { type CaseContext, deadlineFor, uniqueName, withDeadline } from './context.js';
import { libraryReadersRun, rawReadersRun } from './readers.js';
import { GROUP, measurePoint } from './scalingPoint.js';

const PAYLOAD_SIZES = [100, 1_000, 10_000, 100_000, 1_000_000] as const;

/** Adds in flight when publishing, as in issue 19's measurement. */
const PUBLISH_WINDOW = 100;

/** Bytes published or consumed per run at each size (fewer events as they grow). */
function byteBudget(ctx: CaseContext): number {
  return ctx.options.quick ? 16_000_000 : 64_000_000;
}

/** Events per run at `size` bytes: the byte budget, between 20 and the case's event count. */
function eventsAt(ctx: CaseContext, size: number): number {
  return Math.max(20, Math.min(ctx.options.events, Math.floor(byteBudget(ctx) / size)));
}

/** XADDs per pipeline when filling: at most about 4 MB of payload in one. */
function fillWindow(size: number): number {
  return Math.max(1, Math.min(1000, Math.floor(4_000_000 / size)));
}

const mbPerSecond = (events: number, size: number, ms: number): number => (rate(events, ms) * size) / 1e6;

async function timed(events: number, what: string, fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await withDeadline(fn(), deadlineFor(events), what);
  return performance.now() - t0;
}

async function payloadPoints(
  ctx: CaseContext,
  library: (payload: Buffer, events: number) => Promise<number>,
  baseline: (payload: Buffer, events: number) => Promise<number>,
): Promise<ScalingPoint[]> {
  const points: ScalingPoint[] = [];
  for (const size of PAYLOAD_SIZES) {
    const payload = makePayload(size);
    const events = eventsAt(ctx, size);
    points.push(
      await measurePoint(
        ctx,
        size,
        events,
        () => library(payload, events),
        () => baseline(payload, events),
      ),
    );
  }
  return points;
}

/** Publishing 100 B to 1 MB payloads: `stream.add` with 100 in flight against pipelined raw XADD in batches of 100. */
export async function payloadPublishCurve(ctx: CaseContext): Promise<ScalingResult> {
  const library = async (payload: Buffer, events: number): Promise<number> => {
    const stream = new Stream(uniqueName('scale-publish'), ctx.client.redis, { maxLen: 0 });
    try {
      const ms = await timed(events, 'library publish', () => publishWithLibrary(stream, events, payload, PUBLISH_WINDOW));
      return mbPerSecond(events, payload.length, ms);
    } finally {
      await flush(ctx.client);
    }
  };
  const baseline = async (payload: Buffer, events: number): Promise<number> => {
    const key = streamKey(uniqueName('scale-publish-raw'));
    try {
      const ms = await timed(events, 'raw publish', () =>
        publishRaw(ctx.client, key, events, payload, PUBLISH_WINDOW, 'pipeline'),
      );
      return mbPerSecond(events, payload.length, ms);
    } finally {
      await flush(ctx.client);
    }
  };
  await library(ctx.payload, ctx.options.warmupEvents);
  await baseline(ctx.payload, ctx.options.warmupEvents);
  return {
    type: 'scaling',
    client: ctx.kind,
    curve: 'payload-publish',
    title: `publish by payload size, ${PUBLISH_WINDOW} in flight`,
    xLabel: 'payload bytes',
    unit: 'MB/s',
    libraryName: `stream.add, ${PUBLISH_WINDOW} in flight`,
    baselineName: `raw XADD, client pipeline in batches of ${PUBLISH_WINDOW}`,
    points: await payloadPoints(ctx, library, baseline),
  };
}

/** Consuming 100 B to 1 MB payloads: a sink acking each event against raw XREADGROUP COUNT 1000 + one XACK per batch. */
export async function payloadConsumeCurve(ctx: CaseContext): Promise<ScalingResult> {
  const filled = async (prefix: string, payload: Buffer, events: number): Promise<string> => {
    const name = uniqueName(prefix);
    await fill(ctx.client, streamKey(name), events, payload, fillWindow(payload.length));
    return name;
  };
  const library = async (payload: Buffer, events: number): Promise<number> => {
    const name = await filled('scale-consume', payload, events);
    const sink = await new Stream(name, ctx.client.redis, { maxLen: 0 }).newSink(GROUP, {
      startAt: 'oldest',
      maxPolled: READ_COUNT,
    });
    try {
      return ((await measure(events, 'library sink', () => consumeWithSink(sink, events))) * payload.length) / 1e6;
    } finally {
      await sink.close();
      await flush(ctx.client);
    }
  };
  const baseline = async (payload: Buffer, events: number): Promise<number> => {
    const key = streamKey(await filled('scale-consume-raw', payload, events));
    await ctx.client.send(['XGROUP', 'CREATE', key, GROUP, '0']);
    const reader = await connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader');
    try {
      const r = await measure(events, 'raw group consumer', () =>
        consumeRawGroup({ reader, acker: ctx.client, key, group: GROUP, consumer: 'raw' }, events),
      );
      return (r * payload.length) / 1e6;
    } finally {
      reader.close();
      await flush(ctx.client);
    }
  };
  await library(ctx.payload, ctx.options.warmupEvents);
  await baseline(ctx.payload, ctx.options.warmupEvents);
  return {
    type: 'scaling',
    client: ctx.kind,
    curve: 'payload-consume',
    title: 'consume by payload size, ack each event',
    xLabel: 'payload bytes',
    unit: 'MB/s',
    libraryName: `one sink, maxPolled ${READ_COUNT}`,
    baselineName: `raw XREADGROUP COUNT ${READ_COUNT} + one XACK per batch`,
    points: await payloadPoints(ctx, library, baseline),
  };
}

const READER_COUNTS = [1, 10, 30, 100] as const;

/** Readers per stream: 1 to 100 readers of one stream against as many raw XREAD loops. */
export async function readersCurve(ctx: CaseContext): Promise<ScalingResult> {
  // Deliveries per run: five times the case's events, each reader reading at least 1000.
  const perReader = (n: number): number => Math.max(1000, Math.min(ctx.options.events, Math.floor((5 * ctx.options.events) / n)));
  await libraryReadersRun(ctx, 10, 1000);
  await rawReadersRun(ctx, 10, 1000);
  const points: ScalingPoint[] = [];
  for (const n of READER_COUNTS) {
    const events = perReader(n);
    points.push(
      await measurePoint(
        ctx,
        n,
        n * events,
        () => libraryReadersRun(ctx, n, events),
        () => rawReadersRun(ctx, n, events),
      ),
    );
  }
  return {
    type: 'scaling',
    client: ctx.kind,
    curve: 'readers',
    title: 'readers of one stream',
    xLabel: 'readers per stream',
    unit: 'deliveries/s',
    libraryName: `N readers, maxPolled ${READ_COUNT}`,
    baselineName: `N raw XREAD COUNT ${READ_COUNT} loops, one connection each`,
    points,
  };
}
