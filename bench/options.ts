/** Command-line options of `npm run bench`. */
import { parseArgs } from 'node:util';
import { CLIENT_KINDS, type ClientKind } from './clients.js';

export const CASE_NAMES = [
  'publish',
  'publish-one',
  'retention',
  'dedup',
  'otel',
  'sink',
  'process-batch',
  'reader',
  'readers',
  'e2e',
  'latency',
  'peer',
  'memory',
  'cluster',
  'idle',
  'reclaim',
  'ceiling',
  'scaling',
] as const;
export type CaseName = (typeof CASE_NAMES)[number];

export type OutputFormat = 'table' | 'json' | 'markdown';

export interface BenchOptions {
  readonly quick: boolean;
  readonly format: OutputFormat;
  /** Render this saved `--json` report instead of running. */
  readonly from: string | undefined;
  /** Also write the report as JSON to this file. */
  readonly out: string | undefined;
  /** Write the scaling curves as SVG charts into this directory. */
  readonly svg: string | undefined;
  /** Timed runs of each side at each point of a scaling curve. */
  readonly scalingRuns: number;
  /** Events per point of a scaling curve (the family has 23 points per client). */
  readonly scalingEvents: number;
  /** Events per throughput case. */
  readonly events: number;
  /** Timed runs per measurement (the median is reported). */
  readonly runs: number;
  /** Timed runs per side of the latency case (`--runs` sets it too). */
  readonly latencyRuns: number;
  /** Events of the untimed run that warms up each side of a case first. */
  readonly warmupEvents: number;
  /** Events of the one-at-a-time publish case. */
  readonly oneAtATimeEvents: number;
  /** Events of the latency case, sent at `latencyRate`. */
  readonly latencyEvents: number;
  readonly latencyRate: number;
  /** Events that pass through a sink in the memory case. */
  readonly memoryEvents: number;
  /** Events of the BullMQ comparison (both sides). */
  readonly peerEvents: number;
  /** Masters of the local Redis Cluster of the cluster case (each with one replica). */
  readonly clusterMasters: number;
  /** Streams the cluster case spreads its events over, in slots of every master. */
  readonly clusterStreams: number;
  /** Requests of each redis-benchmark ceiling run. */
  readonly ceilingRequests: number;
  /** Outstanding promises / pipelined commands per window. */
  readonly window: number;
  readonly payloadBytes: number;
  readonly clients: readonly ClientKind[];
  readonly cases: readonly CaseName[];
}

const USAGE = `usage: npm run bench -- [--quick] [--json | --markdown] [--out report.json] [--svg dir] [--events N] [--runs N]
                        [--clients ioredis,node-redis] [--cases ${CASE_NAMES.join(',')}]
       npm run bench -- --from saved.json [--markdown]   (render a saved --json report)`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer\n${USAGE}`);
  return n;
}

function list<T extends string>(name: string, value: string | undefined, all: readonly T[]): readonly T[] {
  if (value === undefined) return all;
  const items = value.split(',').filter((s) => s.length > 0);
  for (const item of items) {
    if (!(all as readonly string[]).includes(item)) throw new Error(`--${name}: unknown '${item}'\n${USAGE}`);
  }
  return all.filter((a) => items.includes(a));
}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      markdown: { type: 'boolean', default: false },
      events: { type: 'string' },
      runs: { type: 'string' },
      clients: { type: 'string' },
      cases: { type: 'string' },
      from: { type: 'string' },
      out: { type: 'string' },
      svg: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.json && values.markdown) throw new Error(`--json and --markdown exclude each other\n${USAGE}`);
  const quick = values.quick === true;
  const events = positive('events', values.events, quick ? 20_000 : 100_000);
  return {
    quick,
    format: values.json ? 'json' : values.markdown ? 'markdown' : 'table',
    from: values.from,
    out: values.out,
    svg: values.svg,
    // One in a quick run: the family's 23 points per client must fit in about a minute.
    scalingRuns: positive('runs', values.runs, quick ? 1 : 3),
    // Bounded in a full run too: 23 points x 3 runs x 2 sides per client at 100k events would take 20+ min.
    scalingEvents: Math.min(events, quick ? 20_000 : 40_000),
    events,
    // Five in a full run: a raw node-redis pipeline moves by up to 40% between runs of one process.
    runs: positive('runs', values.runs, quick ? 3 : 5),
    // Nine in a full run: one run's p99 moves between 1.0 and 2.9 ms (ioredis), more than the
    // 1.3 x the target allows, and the median of five still crossed it once in four full runs.
    latencyRuns: positive('runs', values.runs, quick ? 3 : 9),
    warmupEvents: Math.min(events, quick ? 5_000 : 10_000),
    oneAtATimeEvents: Math.min(events, quick ? 2_000 : 5_000),
    latencyEvents: quick ? 2_500 : 25_000,
    latencyRate: 5_000,
    memoryEvents: quick ? 100_000 : 1_000_000,
    peerEvents: quick ? Math.min(events, 5_000) : events,
    clusterMasters: 3,
    clusterStreams: 6,
    ceilingRequests: quick ? 50_000 : 200_000,
    window: 1000,
    payloadBytes: 100,
    clients: list('clients', values.clients, CLIENT_KINDS),
    cases: list('cases', values.cases, CASE_NAMES),
  };
}
