/**
 * Output helpers of the command-line program: colours (only on a terminal,
 * never with NO_COLOR), tables, durations, times and payloads.
 */
import { styleText } from 'node:util';

/** A text style understood by `util.styleText`. */
export type StyleName = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan' | 'magenta' | 'gray';

/** Colours text, or leaves it plain when colours are off. */
export interface Painter {
  readonly enabled: boolean;
  paint(style: StyleName | StyleName[], text: string): string;
}

/** True when `stream` is a terminal and `NO_COLOR` is unset (or empty). */
export function colorsWanted(stream: NodeJS.WriteStream): boolean {
  const noColor = process.env.NO_COLOR;
  return stream.isTTY === true && (noColor === undefined || noColor === '');
}

/** A painter that colours only when `enabled`. */
export function painter(enabled: boolean): Painter {
  return {
    enabled,
    paint: (style, text) => (enabled ? styleText(style, text, { validateStream: false }) : text),
  };
}

// Matches the SGR sequences styleText emits, to measure visible widths.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** `text` without colour codes. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** Length of `text` as shown on a terminal (colour codes excluded). */
export function visibleLength(text: string): number {
  return stripAnsi(text).length;
}

function pad(text: string, width: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, width - visibleLength(text)));
  return right ? fill + text : text + fill;
}

/** Options of {@link table}. */
export interface TableOptions {
  /** Indexes of the columns to align right (numbers). */
  readonly right?: readonly number[];
  readonly paint?: Painter;
  /** Prefix of every line. */
  readonly indent?: string;
}

/** Renders rows under a header as aligned columns; returns the lines joined with newlines. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], options: TableOptions = {}): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const right = new Set(options.right ?? []);
  const indent = options.indent ?? '';
  const line = (cells: readonly string[]): string =>
    indent +
    cells
      .map((c, i) => pad(c, widths[i] ?? 0, right.has(i)))
      .join('  ')
      .trimEnd();
  const head = line(header);
  return [options.paint ? options.paint.paint('bold', head) : head, ...rows.map(line)].join('\n');
}

/** A compact duration: `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const two = (n: number): string => String(Math.floor(n)).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${two((s % 86400) / 3600)}h`;
}

/** A time as ISO 8601 in UTC, or `-` when unknown. */
export function formatTime(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '-' : new Date(ms).toISOString();
}

/** A time as `YYYY-MM-DD HH:MM:SS` in UTC, for table cells; `-` when unknown. */
export function shortTime(iso: string | null | undefined): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '-';
}

/** The milliseconds part of a stream entry ID. */
export function idTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/** A number with thousands separators. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `1 entry`, `2 entries`, `1,000 sinks`: a count with the word in the right number. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** A progress bar of `width` cells for a fraction between 0 and 1. */
export function progressBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The payload as text when it is valid UTF-8 without control characters, else undefined. */
export function payloadText(payload: Uint8Array): string | undefined {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return undefined;
  }
  // Tabs and newlines are fine in text; other control characters mean bytes.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 127) return undefined;
  }
  return text;
}

/** JSON fields describing a payload: `payload` as text, or `payloadBase64` for bytes. */
export function payloadJson(payload: Uint8Array): { payload: string } | { payloadBase64: string } {
  const text = payloadText(payload);
  return text === undefined ? { payloadBase64: Buffer.from(payload).toString('base64') } : { payload: text };
}

/** A payload for a terminal line: its text, or `base64:<...>` for bytes. */
export function payloadDisplay(payload: Uint8Array): string {
  const text = payloadText(payload);
  return text === undefined ? `base64:${Buffer.from(payload).toString('base64')}` : text;
}

/** Prints a value as indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
