/**
 * How `demo --trace` shows its spans: a few traces, each a waterfall of the
 * producer's `send` span and the consumers' `process` spans under it.
 */
import type { TraceSpan } from './demoProtocol.js';
import { formatCount, type Painter, plural } from './format.js';

/** One trace: its spans, parents first then by start. */
export interface DemoTrace {
  readonly traceId: string;
  readonly spans: readonly TraceSpan[];
}

const BAR = 24;

/** Traces grouped by ID, each ordered for display (a span after its parent, siblings by start), earliest first. */
export function tracesOf(spans: readonly TraceSpan[]): DemoTrace[] {
  const byTrace = new Map<string, TraceSpan[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId);
    if (list) list.push(s);
    else byTrace.set(s.traceId, [s]);
  }
  const traces: DemoTrace[] = [];
  for (const [traceId, list] of byTrace) {
    const ids = new Set(list.map((s) => s.spanId));
    const children = new Map<string | undefined, TraceSpan[]>();
    for (const s of [...list].sort((a, b) => a.startMs - b.startMs)) {
      // A span whose parent is not here (it died with its process, or is elsewhere) is shown as a root.
      const parent = s.parentSpanId !== undefined && ids.has(s.parentSpanId) ? s.parentSpanId : undefined;
      const siblings = children.get(parent);
      if (siblings) siblings.push(s);
      else children.set(parent, [s]);
    }
    const ordered: TraceSpan[] = [];
    const visit = (parent: string | undefined): void => {
      for (const s of children.get(parent) ?? []) {
        ordered.push(s);
        visit(s.spanId);
      }
    };
    visit(undefined);
    traces.push({ traceId, spans: ordered });
  }
  return traces.sort((a, b) => (a.spans[0]?.startMs ?? 0) - (b.spans[0]?.startMs ?? 0));
}

const deliveries = (t: DemoTrace): number[] =>
  t.spans.filter((s) => s.kind === 'consumer').map((s) => Number(s.attributes['pulse.delivery.count'] ?? 1));

/**
 * The traces worth showing: one of an event handled once, from the middle
 * of the run (the first ones pay for the start), and the first of an event
 * delivered again (after the kill), if any.
 */
export function chooseTraces(traces: readonly DemoTrace[]): DemoTrace[] {
  const complete = traces.filter((t) => t.spans.some((s) => s.kind === 'producer') && deliveries(t).length > 0);
  const once = complete.filter((t) => deliveries(t).every((d) => d === 1));
  const typical = once[Math.floor(once.length / 2)];
  const again = complete.find((t) => deliveries(t).some((d) => d > 1));
  return [typical, again].filter((t): t is DemoTrace => t !== undefined);
}

const ms = (v: number): string => (v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`);

/** One trace as text: a line per span with where it ran and a bar on the trace's time axis (under 80 columns). */
export function waterfallLines(t: DemoTrace, paint: Painter): string[] {
  const t0 = Math.min(...t.spans.map((s) => s.startMs));
  const t1 = Math.max(...t.spans.map((s) => s.startMs + s.durationMs));
  const total = Math.max(t1 - t0, 0.001);
  const depth = new Map<string, number>();
  const first = t.spans.find((s) => s.kind === 'consumer');
  const id = first?.attributes['messaging.message.id'];
  const end = ms(total);
  const axis = `${' '.repeat(12)} ${' '.repeat(16)} ${'0'.padEnd(BAR - end.length)}${end}`;
  const lines = [`trace ${paint.paint('cyan', t.traceId)}${id ? `  event ${id}` : ''}`, paint.paint('dim', `  ${axis}`)];
  for (const s of t.spans) {
    const d = s.parentSpanId !== undefined && depth.has(s.parentSpanId) ? (depth.get(s.parentSpanId) ?? 0) + 1 : 0;
    depth.set(s.spanId, d);
    const label = `${d > 0 ? `${'   '.repeat(d - 1)}└─ ` : ''}${s.name.split(' ')[0] ?? s.name}`.padEnd(12);
    const where = `${s.process} ${s.pid}`.padEnd(16);
    const from = Math.min(BAR - 1, Math.floor(((s.startMs - t0) / total) * BAR));
    const width = Math.max(1, Math.min(BAR - from, Math.round((s.durationMs / total) * BAR)));
    const bar = `${' '.repeat(from)}${'█'.repeat(width)}`.padEnd(BAR);
    const color = s.status === 'error' ? 'red' : s.kind === 'producer' ? 'magenta' : 'green';
    const delivery = s.kind === 'consumer' ? `  delivery ${s.attributes['pulse.delivery.count'] ?? '?'}` : '';
    lines.push(`  ${label} ${where} ${paint.paint(color, bar)} ${ms(s.durationMs).padStart(9)}${delivery}`);
  }
  if (deliveries(t).every((n) => n > 1)) {
    lines.push(paint.paint('dim', '  (delivery 1 ran on the killed consumer: its span died with the process)'));
  }
  return lines;
}

/** What `demo --trace` prints after the summary. */
export function traceLines(spans: readonly TraceSpan[], paint: Painter, file: string | undefined): string[] {
  const traces = tracesOf(spans);
  const chosen = chooseTraces(traces);
  const head = `${formatCount(traces.length)} sampled ${traces.length === 1 ? 'trace' : 'traces'}, ${plural(spans.length, 'span')}`;
  const where = file ? `; all written to ${file}` : '; --trace=FILE writes them all as JSON';
  return [
    '',
    `${paint.paint('bold', 'traces')}  ${paint.paint('dim', `${head}${where}`)}`,
    ...(chosen.length === 0 ? ['  no trace with both a send and a process span was sampled'] : []),
    ...chosen.flatMap((t) => ['', ...waterfallLines(t, paint)]),
  ];
}
