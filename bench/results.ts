/** What the benchmark cases measure, as printed and as written with `--json`. */
import type { ClientKind } from './clients.js';
import type { Machine } from './machine.js';
import type { Summary } from './stats.js';

export type ThroughputCase =
  | 'publish'
  | 'publish-one'
  | 'publish-interest'
  | 'publish-one-interest'
  | 'dedup'
  | 'otel-publish'
  | 'otel-sink'
  | 'sink'
  | 'process-batch'
  | 'process-batch-noop'
  | 'reader'
  | 'readers'
  | 'e2e'
  | 'peer-publish'
  | 'peer-process'
  | 'reclaim';

/** Events per second of the library and of its baseline, measured alternately in the same run. */
export interface ThroughputResult {
  readonly type: 'throughput';
  readonly client: ClientKind;
  readonly case: ThroughputCase;
  readonly title: string;
  readonly baselineName: string;
  readonly events: number;
  readonly library: Summary;
  readonly baseline: Summary;
  /** library median / baseline median */
  readonly ratio: number;
}

export interface LatencySummary {
  readonly p50: Summary;
  readonly p99: Summary;
  readonly p999: Summary;
}

/** Milliseconds from `add` to the handler at a steady rate. */
export interface LatencyResult {
  readonly type: 'latency';
  readonly client: ClientKind;
  readonly rate: number;
  readonly events: number;
  readonly library: LatencySummary;
  readonly baseline: LatencySummary;
  /** library p99 median / baseline p99 median */
  readonly p99Ratio: number;
}

/** Memory of a consumer process while events pass through it, in MB. */
export interface MemoryReport {
  readonly events: number;
  readonly elapsedMs: number;
  /** After warm-up (the first 10% of events) and a full GC. */
  readonly rssBase: number;
  readonly rssPeak: number;
  /** After the last event and a full GC. */
  readonly rssEnd: number;
  readonly heapBase: number;
  readonly heapPeak: number;
  readonly heapEnd: number;
}

export interface MemoryResult {
  readonly type: 'memory';
  readonly client: ClientKind;
  readonly events: number;
  readonly library: MemoryReport;
  readonly baseline: MemoryReport;
}

export type ClusterCase = 'cluster-publish' | 'cluster-sink';

/** Library and baseline medians of the same work on one topology. */
export interface TopologyRates {
  readonly library: Summary;
  readonly baseline: Summary;
  /** library median / baseline median */
  readonly ratio: number;
}

/**
 * The same work over several streams on a local Redis Cluster and on the
 * single private server, both measured in the same run, the runs of the four
 * measurements interleaved.
 */
export interface ClusterResult {
  readonly type: 'cluster';
  readonly client: ClientKind;
  readonly case: ClusterCase;
  readonly title: string;
  readonly baselineName: string;
  readonly events: number;
  /** Masters of the cluster, each with one replica. */
  readonly masters: number;
  /** The hash slot of each stream, spread over every master. */
  readonly slots: readonly number[];
  readonly cluster: TopologyRates;
  readonly singleNode: TopologyRates;
  /** Cluster library median / single-node library median: above 1 scaling out buys, below 1 it costs. */
  readonly libraryVsSingleNode: number;
  /** The same for the raw baseline. */
  readonly baselineVsSingleNode: number;
}

/** One point of a scaling curve: the library and its raw counterpart at one setting. */
export interface ScalingPoint {
  /** The setting: streams, consumers, payload bytes, readers... */
  readonly x: number;
  /** Events each side handled (deliveries for readers). */
  readonly events: number;
  /** In the curve's unit. */
  readonly library: Summary;
  readonly baseline: Summary;
  /** library median / baseline median */
  readonly ratio: number;
  /** Consumers of one sink: the share of the events each consumer got, in the last run of each side. */
  readonly shares?: { readonly library: readonly number[]; readonly baseline: readonly number[] };
}

/** How cost grows with one setting, each point against its raw counterpart (`--cases scaling`). */
export interface ScalingResult {
  readonly type: 'scaling';
  readonly client: ClientKind;
  /** Short id, also the chart's file name: `streams`, `consumers`, `payload-publish`... */
  readonly curve: string;
  readonly title: string;
  /** What x is, e.g. 'streams per sink'. */
  readonly xLabel: string;
  /** Unit of the rates, e.g. 'events/s', 'MB/s'. */
  readonly unit: string;
  readonly libraryName: string;
  readonly baselineName: string;
  readonly points: readonly ScalingPoint[];
}

/** Redis commands per second while nothing is published (issue 20). */
export interface IdleResult {
  readonly type: 'idle';
  readonly client: ClientKind;
  readonly topology: 'single node' | 'cluster';
  readonly setup: string;
  readonly streams: number;
  /** Sink instances, each of its own sink (name). */
  readonly sinks: number;
  readonly seconds: number;
  readonly commandsPerSecond: number;
  /** Commands per second per sink instance. */
  readonly perInstance: number;
  /** Commands per second per stream-group pair. */
  readonly perPair: number;
  /** The commands sent most during the window, per second. */
  readonly dominant: string;
}

export type CaseResult = ThroughputResult | LatencyResult | MemoryResult | ClusterResult | ScalingResult | IdleResult;

/** `redis-benchmark` pipelined XADD: what the server alone can take. */
export interface CeilingResult {
  readonly command: string;
  readonly requestsPerSecond: Summary;
}

export interface Target {
  readonly client: ClientKind;
  readonly name: string;
  /** What was measured, e.g. a ratio or MB. */
  readonly value: number;
  readonly goal: string;
  readonly pass: boolean;
}

export interface BenchReport {
  readonly machine: Machine;
  readonly settings: Record<string, number | boolean | string>;
  readonly durationMs: number;
  readonly ceiling: CeilingResult | undefined;
  readonly results: readonly CaseResult[];
  readonly targets: readonly Target[];
}
