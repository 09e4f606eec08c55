/**
 * A tiny SVG line-chart emitter for the scaling curves: x on a log scale
 * (every setting spans decades), y linear from 0, one solid line per client
 * for the library and a dashed one for its raw counterpart. No dependency:
 * the charts are committed beside BENCHMARKS.md (docs/bench/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScalingResult } from './results.js';

const WIDTH = 640;
const HEIGHT = 400;
const MARGIN = { left: 80, right: 20, top: 40, bottom: 110 };
const COLORS: Record<string, string> = { ioredis: '#1f77b4', 'node-redis': '#d62728' };

interface Series {
  readonly name: string;
  readonly color: string;
  readonly dashed: boolean;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

function escapeXml(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** 1, 2, 5 x 10^k steps giving about `count` ticks from 0 to `max`. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step / 2; v += step) ticks.push(v);
  return ticks;
}

/** 1234567 -> 1.2M, 45000 -> 45k. */
function short(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(abs < 10 ? 2 : 0)}`;
}

/** Payload sizes read better in bytes units. */
function xTick(x: number, bytes: boolean): string {
  if (!bytes) return String(x);
  if (x >= 1e6) return `${x / 1e6} MB`;
  if (x >= 1e3) return `${x / 1e3} KB`;
  return `${x} B`;
}

/** One chart of a curve for every client measured: library solid, raw dashed. */
export function curveChart(results: readonly ScalingResult[]): string {
  const [first] = results;
  if (!first) throw new Error('no results to chart');
  const series: Series[] = results.flatMap((r) => [
    {
      name: `${r.client} library`,
      color: COLORS[r.client] ?? '#333',
      dashed: false,
      points: r.points.map((p) => [p.x, p.library.median] as const),
    },
    {
      name: `${r.client} raw`,
      color: COLORS[r.client] ?? '#333',
      dashed: true,
      points: r.points.map((p) => [p.x, p.baseline.median] as const),
    },
  ]);
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const yTicks = niceTicks(Math.max(...ys) * 1.05);
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  const xMin = Math.log10(xs[0] ?? 1);
  const xMax = Math.log10(xs[xs.length - 1] ?? 10);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x: number): number => MARGIN.left + (xMax === xMin ? plotW / 2 : ((Math.log10(x) - xMin) / (xMax - xMin)) * plotW);
  const py = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const bytes = first.unit === 'MB/s';
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(`${first.title}: ${first.unit} by ${first.xLabel}, library and raw`)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(first.title)}</text>`,
  ];
  for (const t of yTicks) {
    const y = py(t).toFixed(1);
    out.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${short(t)}</text>`,
    );
  }
  for (const x of xs) {
    const X = px(x).toFixed(1);
    out.push(
      `<line x1="${X}" x2="${X}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${X}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${escapeXml(xTick(x, bytes))}</text>`,
    );
  }
  out.push(
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 36}" text-anchor="middle">${escapeXml(first.xLabel)} (log scale)</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(first.unit)}</text>`,
  );
  for (const s of series) {
    const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      ...s.points.map(
        ([x, y]) =>
          `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.dashed ? '#fff' : s.color}" stroke="${s.color}"/>`,
      ),
    );
  }
  // Legend, two entries per row, under the x label.
  series.forEach((s, i) => {
    const lx = MARGIN.left + (i % 2) * 260;
    const ly = MARGIN.top + plotH + 58 + Math.floor(i / 2) * 18;
    out.push(
      `<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${lx + 36}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes `scaling-<curve>.svg` into `dir` for each curve of the results; returns the files written. */
export function writeCurveCharts(dir: string, results: readonly ScalingResult[]): string[] {
  const byCurve = new Map<string, ScalingResult[]>();
  for (const r of results) byCurve.set(r.curve, [...(byCurve.get(r.curve) ?? []), r]);
  if (byCurve.size === 0) return [];
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const [curve, rs] of byCurve) {
    const file = join(dir, `scaling-${curve}.svg`);
    writeFileSync(file, curveChart(rs));
    files.push(file);
  }
  return files;
}
