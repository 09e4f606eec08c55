/**
 * Draws the traces `demo --trace=FILE` wrote as an SVG waterfall: the same
 * traces the demo prints (one of an event handled once, one of an event
 * delivered again after the kill), a row per span on each trace's time axis.
 *
 *   npm run build
 *   npm run demo -- --duration 10 --rate 200 --trace=spans.json
 *   node scripts/trace-svg.mjs spans.json docs/tracing-demo.svg
 *
 * Uses the CLI's own choice of traces (its build, dist/demoTraceView.js).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { chooseTraces, tracesOf } from '../packages/pulse-streaming-cli/dist/demoTraceView.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: node scripts/trace-svg.mjs <spans.json> <out.svg>\n');
  process.exit(2);
}

const W = 900;
const LABEL = 380;
const BAR = W - LABEL - 30;
const ROW = 26;
const COLORS = { producer: '#7c3aed', consumer: '#059669', error: '#dc2626' };

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const tickText = (v) => (v >= 1000 ? `${Number((v / 1000).toPrecision(4))} s` : `${Number(v.toPrecision(4))} ms`);
const ms = (v) => (v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`);

/** Round tick step for an axis of `total` ms: about five ticks. */
function step(total) {
  const raw = total / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
}

const traces = chooseTraces(tracesOf(JSON.parse(readFileSync(input, 'utf8'))));
if (traces.length === 0) {
  process.stderr.write(`${input}: no trace with a send and a process span\n`);
  process.exit(1);
}

const parts = [];
let y = 20;
parts.push(`<text x="16" y="${y + 8}" class="title">pulse-streaming demo --trace: one trace per event, across processes</text>`);
y += 34;
for (const t of traces) {
  const t0 = Math.min(...t.spans.map((s) => s.startMs));
  const total = Math.max(...t.spans.map((s) => s.startMs + s.durationMs)) - t0 || 1;
  const x = (v) => LABEL + (v / total) * BAR;
  const deliveries = t.spans.filter((s) => s.kind === 'consumer').map((s) => Number(s.attributes['pulse.delivery.count'] ?? 1));
  const again = deliveries.some((d) => d > 1);
  const event = t.spans.find((s) => s.kind === 'consumer')?.attributes['messaging.message.id'];
  const what = again ? 'an event redelivered after its consumer was killed' : 'an event handled once';
  parts.push(`<text x="16" y="${y}" class="head">trace ${esc(t.traceId)}</text>`);
  parts.push(
    `<text x="${W - 16}" y="${y}" class="dim" text-anchor="end">${esc(what)}${event ? `, event ${esc(event)}` : ''}</text>`,
  );
  y += 12;
  const top = y;
  const height = t.spans.length * ROW + 8;
  const s = step(total);
  for (let v = 0; v <= total + 1e-9; v += s) {
    parts.push(`<line x1="${x(v)}" y1="${top}" x2="${x(v)}" y2="${top + height}" class="grid"/>`);
    parts.push(`<text x="${x(v)}" y="${top + height + 13}" class="tick" text-anchor="middle">${esc(tickText(v))}</text>`);
  }
  const depth = new Map();
  for (const [i, sp] of t.spans.entries()) {
    const d = sp.parentSpanId !== undefined && depth.has(sp.parentSpanId) ? depth.get(sp.parentSpanId) + 1 : 0;
    depth.set(sp.spanId, d);
    const ry = top + 4 + i * ROW;
    const color = sp.status === 'error' ? COLORS.error : (COLORS[sp.kind] ?? '#64748b');
    const bx = x(sp.startMs - t0);
    const bw = Math.max(2, (sp.durationMs / total) * BAR);
    const label = `${d > 0 ? '└ ' : ''}${sp.name.split(' ')[0]}`;
    const detail = sp.kind === 'consumer' ? `delivery ${sp.attributes['pulse.delivery.count'] ?? '?'}` : '';
    parts.push(`<text x="${16 + d * 16}" y="${ry + 15}" class="span">${esc(label)}</text>`);
    const where = `${sp.process} (pid ${sp.pid})${detail ? `, ${detail}` : ''}`;
    parts.push(`<text x="${104 + d * 16}" y="${ry + 15}" class="dim">${esc(where)}</text>`);
    parts.push(
      `<rect x="${bx.toFixed(1)}" y="${ry + 3}" width="${bw.toFixed(1)}" height="${ROW - 8}" rx="3" fill="${color}"><title>${esc(
        `${sp.name} (${sp.kind}) ${ms(sp.durationMs)}`,
      )}</title></rect>`,
    );
    // The duration right of the bar; inside it, or left of it, when the bar reaches the right edge.
    const [tx, anchor, cls] =
      bx + bw + 70 < W ? [bx + bw + 6, 'start', 'dur'] : bw > 80 ? [bx + bw - 6, 'end', 'inside'] : [bx - 6, 'end', 'dur'];
    parts.push(
      `<text x="${tx.toFixed(1)}" y="${ry + 15}" class="${cls}" text-anchor="${anchor}">${esc(ms(sp.durationMs))}</text>`,
    );
  }
  y = top + height + 34;
  if (again && deliveries.every((d) => d > 1)) {
    parts.push(`<text x="16" y="${y}" class="dim">delivery 1 ran on the killed consumer: its span died with the process</text>`);
    y += 18;
  }
  y += 20;
}

parts.push(
  `<text x="16" y="${y - 14}" class="dim">send: until Redis stored the event; process: the handler call (the demo's returns at its next ack round)</text>`,
);
y += 8;

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" font-size="12">
<title>pulse-streaming demo --trace: ${traces.length} traces, each a send span of the producer with the process spans of the consumer processes</title>
<style>
.title { font-size: 13px; font-weight: 600; fill: #0f172a; }
.head { font-weight: 600; fill: #0f172a; }
.span { fill: #0f172a; }
.dim, .tick { fill: #64748b; }
.tick { font-size: 10px; }
.dur { fill: #334155; }
.inside { fill: #ffffff; }
.grid { stroke: #e2e8f0; stroke-width: 1; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
${parts.join('\n')}
</svg>
`;
writeFileSync(output, svg);
process.stderr.write(`${output}: ${traces.length} traces\n`);
