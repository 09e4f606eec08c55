/**
 * The `scaling` case family: how cost grows with one setting at a time, each
 * point measured against its raw counterpart in the same run (library and
 * baseline alternate at each point). The curves are rendered as SVG charts
 * with `--svg dir` (bench/svg.ts, docs/bench/ for BENCHMARKS.md).
 *
 * - streams per sink (1, 10, 100, 1000): one sink over N streams against one
 *   raw XREADGROUP over the N streams + one XACK per stream and batch;
 * - consumers of one sink (1-16): N sink instances of one group against N raw
 *   XREADGROUP + XACK loops, with the share each got;
 * - payload size (100 B - 1 MB), publish and consume, in MB/s
 *   (scalingPayload.ts);
 * - readers per stream (1-100), in deliveries/s (readers.ts).
 *
 * Another curve (e.g. the pending-list size at takeover of the reclaim case)
 * is one more {@link ScalingCurve} in {@link SCALING_CURVES}.
 */
import { type Sink, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type BenchClient, type Command, connectClient } from '../clients.js';
import { READ_COUNT } from '../consumers.js';
import { BLOCK_MS, replyEntries, streamKey, xadd } from '../rawStreams.js';
import type { ScalingPoint, ScalingResult } from '../results.js';
import { flush } from '../server.js';
import { measure } from './consume.js';
import type { CaseContext } from './context.js';
import { uniqueName } from './context.js';
import { consumersCurve } from './scalingConsumers.js';
import { payloadConsumeCurve, payloadPublishCurve, readersCurve } from './scalingPayload.js';
import { GROUP, measurePoint } from './scalingPoint.js';

/** One curve of the family. */
export type ScalingCurve = (ctx: CaseContext) => Promise<ScalingResult>;

/** Fills `keys` with `events` spread over them, in pipelines of `window` XADDs (not timed). */
async function fillSpread(ctx: CaseContext, keys: readonly string[], events: number): Promise<void> {
  let batch: Command[] = [];
  for (let i = 0; i < events; i++) {
    batch.push(xadd(keys[i % keys.length] as string, ctx.payload));
    if (batch.length >= ctx.options.window) {
      await ctx.client.pipeline(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await ctx.client.pipeline(batch);
}

/** `count` stream names of one run. */
function names(prefix: string, count: number): string[] {
  const base = uniqueName(prefix);
  return Array.from({ length: count }, (_, i) => `${base}:${i}`);
}

/** One sink over `count` streams holding `events` in all, acking each event. */
export async function sinkOverStreams(ctx: CaseContext, count: number, events: number): Promise<number> {
  const all = names('scale-streams', count);
  await fillSpread(ctx, all.map(streamKey), events);
  const [first, ...rest] = all.map((n) => new Stream(n, ctx.client.redis, { maxLen: 0 }));
  if (!first) throw new Error('no streams');
  const sink: Sink = await first.newSink(GROUP, { startAt: 'oldest', maxPolled: READ_COUNT });
  try {
    for (const s of rest) await sink.addStream(s);
    return await measure(events, 'library sink over streams', async () => {
      let n = 0;
      let last: Promise<void> | undefined;
      for await (const ev of sink) {
        const ack = ev.ack();
        if (ack !== last) {
          last = ack;
          // Awaited below; a failure before that must not go unhandled.
          ack.catch(() => {});
        }
        if (++n >= events) break;
      }
      await last;
      if (n < events) throw new Error(`sink ended after ${n} of ${events} events`);
    });
  } finally {
    await sink.close();
    await flush(ctx.client);
  }
}

/** One raw XREADGROUP COUNT 1000 over `count` streams on a connection of its own, one XACK per stream and batch. */
export async function rawGroupOverStreams(ctx: CaseContext, count: number, events: number): Promise<number> {
  const keys = names('scale-streams-raw', count).map(streamKey);
  await fillSpread(ctx, keys, events);
  await ctx.client.pipeline(keys.map((k) => ['XGROUP', 'CREATE', k, GROUP, '0']));
  const reader: BenchClient = await connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader');
  try {
    const read: Command = [
      'XREADGROUP',
      'GROUP',
      GROUP,
      'raw',
      'COUNT',
      String(READ_COUNT),
      'BLOCK',
      BLOCK_MS,
      'STREAMS',
      ...keys,
      ...keys.map(() => '>'),
    ];
    return await measure(events, 'raw group over streams', async () => {
      let n = 0;
      let last: Promise<unknown> | undefined;
      let failure: unknown;
      while (n < events) {
        const reply = await reader.send(read);
        let got = 0;
        for (const [key, ids] of perKeyIds(reply)) {
          got += ids.length;
          last = ctx.client.send(['XACK', key, GROUP, ...ids]);
          last.catch((err: unknown) => {
            failure ??= err;
          });
        }
        if (got === 0) throw new Error(`raw group stalled after ${n} of ${events} events`);
        n += got;
      }
      await last;
      if (failure !== undefined) throw failure;
    });
  } finally {
    reader.close();
    await flush(ctx.client);
  }
}

/** The IDs of each stream of an XREADGROUP reply over several streams. */
function perKeyIds(reply: unknown): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = [];
  const pairs: unknown[][] = [];
  if (reply instanceof Map) for (const [k, v] of reply) pairs.push([k, v]);
  else if (Array.isArray(reply)) {
    if (reply.length > 0 && !Array.isArray(reply[0])) {
      for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
    } else for (const p of reply) if (Array.isArray(p)) pairs.push(p);
  } else if (typeof reply === 'object' && reply !== null) for (const [k, v] of Object.entries(reply)) pairs.push([k, v]);
  for (const [k, v] of pairs) {
    const ids = replyEntries([[k, v]]).map((e) => e.id);
    if (ids.length > 0) out.push([String(k), ids]);
  }
  return out;
}

const STREAM_COUNTS = [1, 10, 100, 1000] as const;

/** Streams per sink: one sink over 1 to 1000 streams against one raw multi-stream XREADGROUP. */
export async function streamsCurve(ctx: CaseContext): Promise<ScalingResult> {
  const { events } = ctx.options;
  await sinkOverStreams(ctx, 1, ctx.options.warmupEvents);
  await rawGroupOverStreams(ctx, 1, ctx.options.warmupEvents);
  const points: ScalingPoint[] = [];
  for (const n of STREAM_COUNTS) {
    points.push(
      await measurePoint(
        ctx,
        n,
        events,
        () => sinkOverStreams(ctx, n, events),
        () => rawGroupOverStreams(ctx, n, events),
      ),
    );
  }
  return {
    type: 'scaling',
    client: ctx.kind,
    curve: 'streams',
    title: 'one sink over N streams, ack each event',
    xLabel: 'streams per sink',
    unit: 'events/s',
    libraryName: `one sink, maxPolled ${READ_COUNT}`,
    baselineName: `one raw XREADGROUP COUNT ${READ_COUNT} over the N streams + XACK per stream and batch`,
    points,
  };
}

/** Every curve of the family, in order. */
export const SCALING_CURVES: readonly ScalingCurve[] = [
  streamsCurve,
  consumersCurve,
  payloadPublishCurve,
  payloadConsumeCurve,
  readersCurve,
  // The reclaim engineer's pending-list-size-at-takeover curve goes here.
];

/** Runs every curve of the family for the client of `ctx`. */
export async function scalingCases(ctx: CaseContext): Promise<ScalingResult[]> {
  const out: ScalingResult[] = [];
  // Curves size their points by `events`: the family's own, smaller count.
  const { scalingEvents } = ctx.options;
  const scaled: CaseContext = {
    ...ctx,
    options: { ...ctx.options, events: scalingEvents, warmupEvents: Math.min(ctx.options.warmupEvents, scalingEvents) },
  };
  for (const curve of SCALING_CURVES) {
    const t0 = performance.now();
    const r = await curve(scaled);
    ctx.log(`${ctx.kind}: scaling ${r.curve} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    out.push(r);
  }
  return out;
}
