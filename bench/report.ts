/** Turns a run's results into the printed report: aligned text or Markdown. */
import { readFileSync } from 'node:fs';
import type {
  BenchReport,
  ClusterResult,
  IdleResult,
  LatencyResult,
  LatencySummary,
  MemoryResult,
  ScalingResult,
  ThroughputResult,
  TopologyRates,
} from './results.js';
import type { Summary } from './stats.js';
import { formatCount, formatFixed, renderMarkdown, renderText, type Table } from './table.js';
import { rssGrowth } from './targets.js';

export type ReportFormat = 'table' | 'markdown';

function spread(s: Summary, format: (n: number) => string): string {
  return `${format(s.median)} [${format(s.min)}-${format(s.max)}]`;
}

const count = (s: Summary): string => spread(s, formatCount);
const ms = (n: number): string => formatFixed(n, 2);
const mb = (n: number): string => formatFixed(n, 1);

function throughputTable(results: readonly ThroughputResult[]): Table {
  return {
    headers: ['client', 'case', 'events', 'library ev/s median [min-max]', 'baseline ev/s median [min-max]', 'ratio', 'baseline'],
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'left'],
    rows: results.map((r) => [
      r.client,
      r.title,
      formatCount(r.events),
      count(r.library),
      count(r.baseline),
      formatFixed(r.ratio, 2),
      r.baselineName,
    ]),
  };
}

function clusterTable(results: readonly ClusterResult[]): Table {
  const row = (r: ClusterResult, where: string, t: TopologyRates, vs: string[]): string[] => [
    r.client,
    r.title,
    where,
    formatCount(r.events),
    count(t.library),
    count(t.baseline),
    formatFixed(t.ratio, 2),
    ...vs,
    r.baselineName,
  ];
  return {
    headers: [
      'client',
      'case',
      'on',
      'events',
      'library ev/s median [min-max]',
      'baseline ev/s median [min-max]',
      'ratio',
      'library cluster / single',
      'baseline cluster / single',
      'baseline',
    ],
    align: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
    rows: results.flatMap((r) => [
      row(r, 'single node', r.singleNode, ['', '']),
      row(r, `cluster, ${r.masters} masters + ${r.masters} replicas`, r.cluster, [
        formatFixed(r.libraryVsSingleNode, 2),
        formatFixed(r.baselineVsSingleNode, 2),
      ]),
    ]),
  };
}

/** Consumers' shares as percentages, e.g. "26/25/24/25%". */
function sharesText(shares: readonly number[] | undefined): string {
  return shares && shares.length > 0 ? `${shares.map((v) => (v * 100).toFixed(0)).join('/')}%` : '';
}

function scalingTable(results: readonly ScalingResult[]): Table {
  const value = (n: number): string => (n >= 100 ? formatCount(n) : formatFixed(n, 1));
  return {
    headers: [
      'client',
      'curve',
      'x',
      'unit',
      'library median [min-max]',
      'raw median [min-max]',
      'ratio',
      'shares library / raw',
    ],
    align: ['left', 'left', 'right', 'left', 'right', 'right', 'right', 'left'],
    rows: results.flatMap((r) =>
      r.points.map((p) => [
        r.client,
        r.curve,
        formatCount(p.x),
        r.unit,
        spread(p.library, value),
        spread(p.baseline, value),
        formatFixed(p.ratio, 2),
        p.shares ? `${sharesText(p.shares.library)} / ${sharesText(p.shares.baseline)}` : '',
      ]),
    ),
  };
}

function latencyCells(l: LatencySummary): string[] {
  return [spread(l.p50, ms), spread(l.p99, ms), spread(l.p999, ms)];
}

function latencyTable(results: readonly LatencyResult[]): Table {
  return {
    headers: ['client', 'side', 'events', 'p50 ms', 'p99 ms', 'p99.9 ms', 'p99 ratio'],
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
    rows: results.flatMap((r) => [
      [r.client, `library sink @ ${r.rate}/s`, formatCount(r.events), ...latencyCells(r.library), formatFixed(r.p99Ratio, 2)],
      [r.client, 'raw XADD + XREADGROUP', formatCount(r.events), ...latencyCells(r.baseline), ''],
    ]),
  };
}

function memoryTable(results: readonly MemoryResult[]): Table {
  const row = (r: MemoryResult, side: string, m: MemoryResult['library']): string[] => [
    r.client,
    side,
    formatCount(m.events),
    formatCount((m.events * 1000) / m.elapsedMs),
    `${mb(m.rssBase)} / ${mb(m.rssPeak)} / ${mb(m.rssEnd)}`,
    mb(rssGrowth(m)),
    mb(m.rssPeak - m.rssBase),
    `${mb(m.heapBase)} / ${mb(m.heapPeak)} / ${mb(m.heapEnd)}`,
  ];
  return {
    headers: [
      'client',
      'consumer',
      'events',
      'ev/s',
      'RSS MB base / peak / end',
      'RSS growth MB',
      'peak - base MB',
      'heap MB base / peak / end',
    ],
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    rows: results.flatMap((r) => [row(r, 'library sink', r.library), row(r, 'raw XREADGROUP + XACK', r.baseline)]),
  };
}

function ceilingLines(report: BenchReport, throughput: readonly ThroughputResult[], bullet: string): string[] {
  const c = report.ceiling;
  if (!c) return [];
  const lines = [`${c.command}: ${count(c.requestsPerSecond)} XADD/s`];
  for (const r of throughput.filter((t) => t.case === 'publish')) {
    lines.push(
      `${bullet}${r.client}: library publish = ${formatFixed(r.library.median / c.requestsPerSecond.median, 2)} x ceiling, raw pipelined = ${formatFixed(r.baseline.median / c.requestsPerSecond.median, 2)} x ceiling`,
    );
  }
  return lines;
}

function idleTable(results: readonly IdleResult[]): Table {
  return {
    headers: ['client', 'on', 'idle setup', 'commands/s', 'per instance', 'per stream-group pair', 'seconds', 'dominated by'],
    align: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'left'],
    rows: results.map((r) => [
      r.client,
      r.topology,
      r.setup,
      formatFixed(r.commandsPerSecond, 1),
      formatFixed(r.perInstance, 2),
      formatFixed(r.perPair, 3),
      formatFixed(r.seconds, 0),
      r.dominant,
    ]),
  };
}

function targetTable(report: BenchReport): Table {
  return {
    headers: ['result', 'client', 'target', 'measured', 'goal'],
    align: ['left', 'left', 'left', 'right', 'left'],
    rows: report.targets.map((t) => [t.pass ? 'PASS' : 'MISS', t.client, t.name, formatFixed(t.value, 3), t.goal]),
  };
}

export function renderReport(report: BenchReport, format: ReportFormat): string {
  const render = format === 'markdown' ? renderMarkdown : renderText;
  const heading = (title: string): string => (format === 'markdown' ? `### ${title}` : `== ${title}`);
  const m = report.machine;
  const throughput = report.results.filter((r): r is ThroughputResult => r.type === 'throughput');
  const latency = report.results.filter((r): r is LatencyResult => r.type === 'latency');
  const memory = report.results.filter((r): r is MemoryResult => r.type === 'memory');
  const cluster = report.results.filter((r): r is ClusterResult => r.type === 'cluster');
  const scaling = report.results.filter((r): r is ScalingResult => r.type === 'scaling');
  const idle = report.results.filter((r): r is IdleResult => r.type === 'idle');
  const settings = Object.entries(report.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const bullet = format === 'markdown' ? '- ' : '';
  const out: string[] = [
    `${bullet}${m.date}: ${m.nproc} x ${m.cpu}, Node ${m.node}, Redis ${m.redis}`,
    `${bullet}load average ${formatFixed(m.loadStart, 2)} at start, ${formatFixed(m.loadEnd, 2)} at end; took ${formatFixed(report.durationMs / 1000, 0)} s`,
    `${bullet}settings: ${settings}`,
  ];
  if (throughput.length > 0) out.push('', heading('Throughput (events/s)'), '', render(throughputTable(throughput)));
  if (latency.length > 0) out.push('', heading('Latency from add to handler'), '', render(latencyTable(latency)));
  if (memory.length > 0) out.push('', heading('Memory of a consumer process'), '', render(memoryTable(memory)));
  if (cluster.length > 0) out.push('', heading('Redis Cluster (events/s)'), '', render(clusterTable(cluster)));
  if (scaling.length > 0) out.push('', heading('Scaling curves'), '', render(scalingTable(scaling)));
  if (idle.length > 0) out.push('', heading('Idle cost (Redis commands/s, default options)'), '', render(idleTable(idle)));
  const ceiling = ceilingLines(report, throughput, format === 'markdown' ? '- ' : '  ');
  if (ceiling.length > 0) {
    const [first = '', ...rest] = ceiling;
    out.push('', heading('Server ceiling'), '', first, ...(format === 'markdown' && rest.length > 0 ? [''] : []), ...rest);
  }
  if (report.targets.length > 0) out.push('', heading('Targets'), '', render(targetTable(report)));
  return `${out.join('\n')}\n`;
}

/** A report saved with `--json`. */
export function readReport(file: string): BenchReport {
  const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const shaped =
    typeof v === 'object' &&
    v !== null &&
    typeof Reflect.get(v, 'machine') === 'object' &&
    Array.isArray(Reflect.get(v, 'results')) &&
    Array.isArray(Reflect.get(v, 'targets'));
  if (!shaped) throw new Error(`${file} is not a report saved with --json`);
  return v as BenchReport;
}
