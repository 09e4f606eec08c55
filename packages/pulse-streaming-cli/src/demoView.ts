/**
 * How the demo looks: a screen redrawn in place on a terminal, plain
 * periodic lines otherwise, and the closing summary table.
 */
import type { DemoSnapshot, DemoSummary } from './demo.js';
import { formatCount, type Painter, progressBar, stripAnsi, table, visibleLength } from './format.js';

const ESC = String.fromCharCode(27);

/** Redraws a block of lines in place on a terminal. */
export class LiveScreen {
  #lines = 0;
  constructor(private readonly out: NodeJS.WriteStream) {}

  /** Hides the cursor while the screen is live. */
  start(): void {
    this.out.write(`${ESC}[?25l`);
  }

  /** Replaces the previous block with `lines` (each cut to the terminal width, so none wraps). */
  draw(lines: readonly string[]): void {
    const width = Math.max(20, (this.out.columns || 80) - 1);
    const rows = lines.flatMap((l) => l.split('\n')).map((l) => (visibleLength(l) > width ? stripAnsi(l).slice(0, width) : l));
    const up = this.#lines > 0 ? `${ESC}[${this.#lines}F${ESC}[J` : '';
    this.out.write(`${up}${rows.join('\n')}\n`);
    this.#lines = rows.length;
  }

  /** Shows the cursor again; the last block stays on screen. */
  stop(): void {
    this.out.write(`${ESC}[?25h`);
  }
}

/** What the header of the demo says. */
export interface DemoHeader {
  readonly stream: string;
  readonly redis: string;
  readonly embedded: boolean;
  readonly rate: number;
  readonly durationS: number;
  readonly sink: string;
  readonly graceMs: number;
}

/** Header lines, shown once above the live block. */
export function headerLines(h: DemoHeader, paint: Painter): string[] {
  return [
    `${paint.paint('bold', 'pulse-streaming demo')}  stream ${paint.paint('cyan', h.stream)} on ${h.redis}${h.embedded ? paint.paint('dim', ' (throwaway server)') : ''}`,
    `${formatCount(h.rate)} events/s for ${h.durationS} s -> sink ${paint.paint('cyan', h.sink)} ` +
      `(3 consumers, ack grace ${h.graceMs / 1000} s) and a reader`,
    'midway one consumer is killed without acking: its events must reach the others',
    '',
  ];
}

/** The live block: progress bar, counters and consumers, then the latest log lines. */
export function frameLines(s: DemoSnapshot, durationS: number, log: readonly string[], paint: Painter): string[] {
  const pct = `${Math.round((s.published / s.target) * 100)}%`.padStart(4);
  const phase =
    s.phase === 'publishing'
      ? `publishing  ${Math.min(s.elapsedS, durationS).toFixed(1)} s of ${durationS} s`
      : s.phase === 'draining'
        ? 'draining: waiting for the last events'
        : 'done';
  const bar = `${paint.paint('green', progressBar(s.published / s.target, 30))} ${pct}  ${phase}`;
  const perSecond = (n: number): string => (s.phase === 'done' ? '' : formatCount(n));
  const warn = (n: number, text: string): string => (n > 0 ? paint.paint('yellow', text) : text);
  const counters = table(
    ['', 'TOTAL', 'PER SECOND'],
    [
      ['published', formatCount(s.published), perSecond(s.publishRate)],
      ['handled', formatCount(s.handled), perSecond(s.handleRate)],
      ['reader received', formatCount(s.readerReceived), ''],
      ['pending', formatCount(s.pending), ''],
      ['lag', s.lag === null ? '?' : formatCount(s.lag), ''],
      ['redeliveries', warn(s.redeliveries, formatCount(s.redeliveries)), ''],
      ['dead letters', formatCount(s.deadLetters), ''],
    ],
    { right: [1, 2], paint },
  );
  const consumers = table(
    ['CONSUMER', 'STATUS', 'HANDLED', 'PENDING'],
    s.consumers.map((c) => [
      c.label,
      c.alive ? paint.paint('green', 'alive') : paint.paint('red', 'KILLED'),
      formatCount(c.handled),
      formatCount(c.pending),
    ]),
    { right: [2, 3], paint },
  );
  return [bar, '', counters, '', consumers, '', ...log.slice(-4).map((l) => paint.paint('yellow', l))];
}

/** One plain progress line, for output that is not a terminal. */
export function progressLine(s: DemoSnapshot): string {
  return (
    `[${s.elapsedS.toFixed(1).padStart(5)}s] ${s.phase} ${progressBar(s.published / s.target, 20)} ` +
    `published ${s.published} (${Math.round(s.publishRate)}/s) handled ${s.handled} (${Math.round(s.handleRate)}/s) ` +
    `reader ${s.readerReceived} pending ${s.pending} lag ${s.lag ?? '?'} redeliveries ${s.redeliveries} dead ${s.deadLetters}`
  );
}

/** The closing table that proves nothing was lost. */
export function summaryLines(r: DemoSummary, paint: Painter): string[] {
  const lostCell = r.lost === 0 ? paint.paint(['bold', 'green'], '0') : paint.paint(['bold', 'red'], formatCount(r.lost));
  const rows: string[][] = [
    ['published', formatCount(r.published), 'events whose add resolved with an ID'],
    ['handled (unique)', formatCount(r.handledUnique), 'published events a consumer handled'],
    ['handled (total)', formatCount(r.handledTotal), ''],
    [
      'duplicates',
      formatCount(r.duplicates),
      r.killed ? `handled again after ${r.killed.consumer} died without acking` : 'handled more than once',
    ],
    ['redeliveries', formatCount(r.redeliveries), 'sink.counters.redelivered, all consumers'],
    ['reader received', formatCount(r.readerReceived), 'the reader sees every event'],
    ['dead letters', formatCount(r.deadLetters), ''],
    ['lost', lostCell, 'published - handled (unique)'],
  ];
  if (r.publishFailed > 0) rows.splice(1, 0, ['adds failed', formatCount(r.publishFailed), 'not published, not counted']);
  const verdict =
    r.lost === 0
      ? paint.paint(['bold', 'green'], r.interrupted ? 'interrupted: nothing lost so far' : 'nothing lost')
      : paint.paint(['bold', 'red'], `${formatCount(r.lost)} events lost`);
  return [
    '',
    paint.paint('bold', 'summary'),
    table(['', 'COUNT', ''], rows, { right: [1], paint, indent: '  ' }),
    '',
    `${verdict}${paint.paint('dim', `  (${r.elapsedS} s; stream ${r.stream})`)}`,
  ];
}
