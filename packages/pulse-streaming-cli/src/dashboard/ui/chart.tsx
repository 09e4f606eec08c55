/** Charts of events per second: a uPlot chart, and a small sparkline for table rows. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { RatePoint } from './api.js';

/** A uPlot chart of one or more rate series over time (seconds on the x axis). */
export function RateChart({ series, height = 180 }: { series: { label: string; points: RatePoint[] }[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const labels = series.map((s) => s.label).join('\n');

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { label: 'events/s', size: 60 }],
      series: [
        {},
        ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } })),
      ],
      legend: { show: series.length > 1 },
    };
    const u = new uPlot(opts, toData(series), el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(300, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of series changes; data updates go through setData below.
  }, [labels, height]);

  useEffect(() => {
    plot.current?.setData(toData(series));
  });

  return <div class="chart" ref={box} />;
}

const COLORS = ['#2f6fdf', '#d9480f', '#2b8a3e', '#862e9c', '#e67700', '#0b7285', '#c2255c', '#5f3dc4'];

/** Columnar data for uPlot: the union of the series' times, each series null where it has no point. */
function toData(series: { points: RatePoint[] }[]): uPlot.AlignedData {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const y: (number | null)[] = new Array(times.length).fill(null);
    for (const [t, v] of s.points) y[index.get(t) as number] = v;
    return y;
  });
  return [times.map((t) => t / 1000), ...ys];
}

/** A tiny line of the recent rate, drawn as SVG (cheap for 50 rows). */
export function Sparkline({ points }: { points: RatePoint[] }) {
  const w = 120;
  const h = 24;
  if (points.length < 2) return <svg class="spark" width={w} height={h} aria-hidden="true" />;
  const t0 = (points[0] as RatePoint)[0];
  const t1 = (points[points.length - 1] as RatePoint)[0];
  const max = Math.max(1, ...points.map((p) => p[1]));
  const d = points
    .map(
      ([t, v], i) =>
        `${i === 0 ? 'M' : 'L'}${(((t - t0) / Math.max(1, t1 - t0)) * w).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`,
    )
    .join('');
  return (
    <svg class="spark" width={w} height={h} aria-hidden="true">
      <path d={d} />
    </svg>
  );
}
