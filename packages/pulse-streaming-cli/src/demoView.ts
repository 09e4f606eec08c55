/**
 * How the demo looks: a screen redrawn in place on a terminal, plain
 * periodic lines otherwise, and the closing summary table.
 */
import type { DemoSnapshot, DemoSummary } from './demo.js';
import { formatCount, type Painter, plural, progressBar, stripAnsi, table, visibleLength } from './format.js';

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

/** Header lines, shown once above the live block; none wider than 79 columns for a short stream name. */
export function headerLines(h: DemoHeader, paint: Painter): string[] {
  return [
    `${paint.paint('bold', 'pulse-streaming demo')}  stream ${paint.paint('cyan', h.stream)}`,
    `Redis ${h.redis}${h.embedded ? paint.paint('dim', ' (throwaway server, removed at exit)') : ''}`,
    `${formatCount(h.rate)} events/s for ${h.durationS} s -> sink ${paint.paint('cyan', h.sink)} (3 consumer processes) and a reader`,
    `Midway one consumer process is killed (SIGKILL) while it holds unacked events:`,
    `they must reach the other consumers after the ${h.graceMs / 1000} s ack grace period.`,
    '',
  ];
}

/** The live block: progress bar, counters with what they mean, consumers, then the latest log lines. */
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
  const dim = (text: string): string => paint.paint('dim', text);
  const counters = table(
    ['', 'TOTAL', 'PER SECOND', ''],
    [
      ['published', formatCount(s.published), perSecond(s.publishRate), dim('events added to the stream')],
      ['handled', formatCount(s.handledUnique), perSecond(s.handleRate), dim('unique events the consumers handled')],
      ['duplicates', warn(s.duplicates, formatCount(s.duplicates)), '', dim('handled again after a redelivery')],
      ['reader received', formatCount(s.readerReceived), '', dim('a reader gets every event (fan-out)')],
      ['pending', formatCount(s.pending), '', dim('delivered to a consumer, not acked yet')],
      ['lag', s.lag === null ? '?' : formatCount(s.lag), '', dim('not yet delivered to the sink')],
      ['redeliveries', warn(s.redeliveries, formatCount(s.redeliveries)), '', dim('claimed after the ack grace period')],
      ['dead letters', formatCount(s.deadLetters), '', ''],
    ],
    { right: [1, 2], paint },
  );
  const consumers = table(
    ['CONSUMER', 'PID', 'STATUS', 'HANDLED', 'PENDING'],
    s.consumers.map((c) => [
      c.label,
      String(c.pid),
      c.alive ? paint.paint('green', 'alive') : paint.paint('red', 'KILLED'),
      formatCount(c.handled),
      formatCount(c.pending),
    ]),
    { right: [1, 3, 4], paint },
  );
  return [bar, '', counters, '', consumers, '', ...log.slice(-5).map((l) => paint.paint('yellow', l))];
}

/** One plain progress line, for output that is not a terminal (under 80 columns). */
export function progressLine(s: DemoSnapshot): string {
  const pct = `${Math.round((s.published / s.target) * 100)}%`.padStart(4);
  return (
    `[${s.elapsedS.toFixed(1).padStart(5)}s] ${pct} published ${s.published} handled ${s.handledUnique} ` +
    `dup ${s.duplicates} pending ${s.pending} lag ${s.lag ?? '?'}`
  );
}

/** The closing table that proves nothing was lost (under 80 columns). */
export function summaryLines(r: DemoSummary, paint: Painter): string[] {
  const lostCell = r.lost === 0 ? paint.paint(['bold', 'green'], '0') : paint.paint(['bold', 'red'], formatCount(r.lost));
  const rows: string[][] = [
    ['published', formatCount(r.published), 'adds that resolved with an ID'],
    ['handled', formatCount(r.handledUnique), 'published events a consumer handled'],
    ['duplicates', formatCount(r.duplicates), 'handled again after a redelivery'],
    ['redeliveries', formatCount(r.redeliveries), 'claimed after the ack grace period'],
    ['reader received', formatCount(r.readerReceived), 'the reader gets every event'],
    ['dead letters', formatCount(r.deadLetters), ''],
    ['lost', lostCell, 'published and never handled'],
  ];
  if (r.publishFailed > 0) rows.splice(1, 0, ['adds failed', formatCount(r.publishFailed), 'not published, not counted']);
  const verdict =
    r.lost === 0
      ? paint.paint(['bold', 'green'], r.interrupted ? 'interrupted: nothing lost so far' : 'nothing lost')
      : paint.paint(['bold', 'red'], `${formatCount(r.lost)} events lost`);
  const killed = r.killed
    ? [
        `${r.killed.consumer} (pid ${r.killed.pid}) was killed holding ${plural(r.killed.heldUnacked, 'unacked event')};`,
        r.killed.redeliveredAfterS === null
          ? 'they had not all been redelivered when the demo ended.'
          : `the other consumers had them all ${r.killed.redeliveredAfterS} s later.`,
      ]
    : [];
  return [
    '',
    paint.paint('bold', 'summary'),
    table(['', 'COUNT', ''], rows, { right: [1], paint, indent: '  ' }),
    '',
    ...killed,
    `${verdict}${paint.paint('dim', `  (${r.elapsedS} s; stream ${r.stream})`)}`,
  ];
}
