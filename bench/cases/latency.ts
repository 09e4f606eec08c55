/**
 * Latency at a steady rate: events are added at `latencyRate` per second and
 * each carries its send time; the handler records how long it took to arrive.
 * Producer and consumer share one process, so they share one clock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { connectClient } from '../clients.js';
import { type ConsumeHooks, consumeRawGroup, consumeWithSink, READ_COUNT } from '../consumers.js';
import { EVENT_NAME, streamKey, xadd } from '../rawStreams.js';
import type { LatencyResult, LatencySummary } from '../results.js';
import { flush } from '../server.js';
import { alternateRuns, type Percentiles, percentiles, summarize } from '../stats.js';
import { type CaseContext, deadlineFor, uniqueName, withDeadline } from './context.js';

const GROUP = 'bench';
/** Share of the first events left out of the percentiles (connections and JIT warming up). */
const WARMUP_SHARE = 0.1;

/** Records add-to-handler latencies from the send time stamped in the first 8 bytes of each payload. */
class LatencyRecorder {
  readonly #samples: Float64Array;
  #count = 0;

  constructor(events: number) {
    this.#samples = new Float64Array(events);
  }

  readonly hooks: ConsumeHooks = {
    onEvent: (payload) => {
      if (this.#count < this.#samples.length) this.#samples[this.#count++] = performance.now() - payload.readDoubleLE(0);
    },
  };

  percentiles(): Percentiles {
    const warm = Math.floor(this.#count * WARMUP_SHARE);
    return percentiles(this.#samples.subarray(warm, this.#count));
  }
}

/** Calls `send` with a freshly stamped payload `ratePerSecond` times a second until `events` are sent. */
async function sendPaced(
  events: number,
  ratePerSecond: number,
  template: Buffer,
  send: (payload: Buffer) => void,
): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  while (sent < events) {
    const due = Math.min(events, Math.floor(((performance.now() - t0) * ratePerSecond) / 1000) + 1);
    for (; sent < due; sent++) {
      const payload = Buffer.from(template);
      payload.writeDoubleLE(performance.now(), 0);
      send(payload);
    }
    await sleep(1);
  }
}

async function libraryRun(ctx: CaseContext, events: number): Promise<Percentiles> {
  const stream = new Stream(uniqueName('latency'), ctx.client.redis, { maxLen: 0 });
  const sink = await stream.newSink(GROUP, { startAt: 'newest', maxPolled: READ_COUNT });
  const recorder = new LatencyRecorder(events);
  let failure: unknown;
  try {
    const consumed = consumeWithSink(sink, events, recorder.hooks);
    await sendPaced(events, ctx.options.latencyRate, ctx.payload, (p) => {
      stream.add(EVENT_NAME, p).catch((err: unknown) => {
        failure ??= err;
      });
    });
    await withDeadline(consumed, deadlineFor(events), 'library latency consumer');
    if (failure !== undefined) throw failure;
    return recorder.percentiles();
  } finally {
    await sink.close();
    await flush(ctx.client);
  }
}

async function rawRun(ctx: CaseContext, events: number): Promise<Percentiles> {
  const key = streamKey(uniqueName('latency-raw'));
  await ctx.client.send(['XGROUP', 'CREATE', key, GROUP, '$', 'MKSTREAM']);
  const reader = await connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader');
  const recorder = new LatencyRecorder(events);
  let failure: unknown;
  try {
    const consumed = consumeRawGroup({ reader, acker: ctx.client, key, group: GROUP, consumer: 'raw' }, events, recorder.hooks);
    await sendPaced(events, ctx.options.latencyRate, ctx.payload, (p) => {
      ctx.client.send(xadd(key, p)).catch((err: unknown) => {
        failure ??= err;
      });
    });
    await withDeadline(consumed, deadlineFor(events), 'raw latency consumer');
    if (failure !== undefined) throw failure;
    return recorder.percentiles();
  } finally {
    reader.close();
    await flush(ctx.client);
  }
}

function summarizeLatency(runs: readonly Percentiles[]): LatencySummary {
  return {
    p50: summarize(runs.map((r) => r.p50)),
    p99: summarize(runs.map((r) => r.p99)),
    p999: summarize(runs.map((r) => r.p999)),
  };
}

/** Library: `add` at a steady rate, a sink acking each event. Baseline: raw XADD at the same rate, raw XREADGROUP + XACK. */
export async function latencyCase(ctx: CaseContext): Promise<LatencyResult> {
  const { latencyEvents: events, latencyRate, latencyRuns: runs } = ctx.options;
  const m = await alternateRuns(
    runs,
    () => libraryRun(ctx, events),
    () => rawRun(ctx, events),
  );
  const library = summarizeLatency(m.library);
  const baseline = summarizeLatency(m.baseline);
  return {
    type: 'latency',
    client: ctx.kind,
    rate: latencyRate,
    events,
    library,
    baseline,
    p99Ratio: library.p99.median / baseline.p99.median,
  };
}
