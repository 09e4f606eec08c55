/** The performance targets of the library, checked against one run's results. */
import type { CaseResult, CeilingResult, MemoryReport, Target, ThroughputCase } from './results.js';

interface RatioGoal {
  readonly name: string;
  readonly min: number;
}

/** Minimum library / baseline ratios. */
const RATIO_GOALS: Partial<Record<ThroughputCase, RatioGoal>> = {
  publish: { name: 'publish vs raw pipelined XADD', min: 0.9 },
  'publish-one': { name: 'awaited one-at-a-time add vs awaited raw XADD', min: 0.95 },
  sink: { name: 'sink consume vs raw XREADGROUP + XACK', min: 0.85 },
  'process-batch': { name: 'processBatch() vs process(), concurrency 1, a handler writing once per call', min: 2 },
  reader: { name: 'reader consume vs raw XREAD', min: 0.9 },
  readers: { name: '100 readers of one stream vs 100 raw XREAD loops', min: 0.9 },
  e2e: { name: 'end to end vs raw producer + consumer', min: 0.85 },
  dedup: { name: 'publish with dedupId vs without', min: 0.7 },
  'otel-publish': { name: 'publish with OpenTelemetry registered (never sampling) vs not', min: 0.8 },
  'otel-sink': { name: 'sink.process() with OpenTelemetry registered (never sampling) vs not', min: 0.8 },
  'peer-publish': { name: 'publish vs BullMQ Queue.add', min: 5 },
  'peer-process': { name: 'processing vs BullMQ Worker', min: 10 },
};

/** One sink over the cluster case's streams vs one raw loop per stream (issue 19). */
const CLUSTER_SINK_MIN = { singleNode: 0.9, cluster: 0.85 };

/**
 * Moonshot, kept as a target line (it may fail): library publishing of
 * 100-byte events at this share of what redis-benchmark's pipelined XADD gets
 * from the same server in the same run.
 */
const CEILING_SHARE_MIN = 0.6;
/** Reclaim: the goal is set at this many pending events (issue 19). */
const RECLAIM_GOAL = { events: 100_000, min: 0.5 };

/** Idle sink instance, default options (issue 20): commands/s per instance and per stream-group pair. */
const IDLE_PER_INSTANCE = 2;
const IDLE_PER_PAIR = 1;

/** Library p99 latency at most this many times the raw p99. */
const MAX_P99_RATIO = 1.3;
/** RSS growth allowed while 1M events pass through a sink. */
const MAX_RSS_GROWTH_MB = 50;

/**
 * RSS growth of a consumer: its size after the last event, less its size
 * after warm-up, both after a full GC. What a leak would add; the peak (in the
 * report) also counts garbage not yet collected.
 */
export function rssGrowth(m: MemoryReport): number {
  return m.rssEnd - m.rssBase;
}

export function evaluateTargets(results: readonly CaseResult[], ceiling?: CeilingResult): Target[] {
  const targets: Target[] = [];
  for (const r of results) {
    if (r.type === 'throughput' && r.case === 'publish' && ceiling) {
      const share = r.library.median / ceiling.requestsPerSecond.median;
      targets.push({
        client: r.client,
        name: 'moonshot: publish vs the redis-benchmark XADD ceiling',
        value: share,
        goal: `>= ${CEILING_SHARE_MIN} x`,
        pass: share >= CEILING_SHARE_MIN,
      });
    }
    if (r.type === 'cluster' && r.case === 'cluster-sink') {
      for (const [where, t] of [
        ['singleNode', r.singleNode],
        ['cluster', r.cluster],
      ] as const) {
        targets.push({
          client: r.client,
          name: `one sink over ${r.slots.length} streams vs raw, ${where === 'cluster' ? 'cluster' : 'single node'}`,
          value: t.ratio,
          goal: `>= ${CLUSTER_SINK_MIN[where]} x`,
          pass: t.ratio >= CLUSTER_SINK_MIN[where],
        });
      }
    }
    if (r.type === 'throughput') {
      if (r.case === 'reclaim' && r.events === RECLAIM_GOAL.events) {
        targets.push({
          client: r.client,
          name: `reclaim of ${r.events.toLocaleString('en-US')} pending vs raw XAUTOCLAIM + XACK`,
          value: r.ratio,
          goal: `>= ${RECLAIM_GOAL.min} x`,
          pass: r.ratio >= RECLAIM_GOAL.min,
        });
      }
      const goal = RATIO_GOALS[r.case];
      if (goal) {
        targets.push({
          client: r.client,
          name: goal.name,
          value: r.ratio,
          goal: `>= ${goal.min} x`,
          pass: r.ratio >= goal.min,
        });
      }
    } else if (r.type === 'latency') {
      targets.push({
        client: r.client,
        name: `p99 latency at ${r.rate} events/s vs raw`,
        value: r.p99Ratio,
        goal: `<= ${MAX_P99_RATIO} x`,
        pass: r.p99Ratio <= MAX_P99_RATIO,
      });
    } else if (r.type === 'idle') {
      targets.push({
        client: r.client,
        name: `idle commands/s per instance, ${r.setup} (${r.topology})`,
        value: r.perInstance,
        goal: `<= ${IDLE_PER_INSTANCE}`,
        pass: r.perInstance <= IDLE_PER_INSTANCE,
      });
      targets.push({
        client: r.client,
        name: `idle commands/s per stream-group pair, ${r.setup} (${r.topology})`,
        value: r.perPair,
        goal: `<= ${IDLE_PER_PAIR}`,
        pass: r.perPair <= IDLE_PER_PAIR,
      });
    } else if (r.type === 'memory') {
      const growth = rssGrowth(r.library);
      targets.push({
        client: r.client,
        name: `sink RSS growth over ${r.events.toLocaleString('en-US')} events (MB)`,
        value: growth,
        goal: `< ${MAX_RSS_GROWTH_MB} MB${r.events < 1_000_000 ? ' (goal set for 1M events)' : ''}`,
        pass: growth < MAX_RSS_GROWTH_MB,
      });
    }
  }
  return targets;
}
