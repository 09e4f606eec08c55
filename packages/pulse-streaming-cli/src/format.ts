/**
 * Output helpers of the command-line program: colours (only on a terminal,
 * never with NO_COLOR), tables, durations, times and payloads.
 */
import { styleText } from 'node:util';
import { displayText, isUnsafe, jsonText, lineField, quoted } from './safeText.js';

export { displayText, jsonText, lineField, quoted };

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

export { formatDuration } from './duration.js';

/**
 * A time in ms as ISO 8601 in UTC, or null when a JS Date cannot hold it: an
 * entry ID's time may be anything up to 2^64 - 1 (a producer that sets
 * explicit IDs in nanoseconds writes such times), a Date ends at 8.64e15 ms,
 * and `toISOString` throws past it.
 */
export function isoTime(ms: number): string | null {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * A time in ms for a terminal: ISO 8601 in UTC; `-` when unknown; the raw
 * number as `<ms> ms` when it is past what a date can show (see {@link isoTime}).
 */
export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  return isoTime(ms) ?? `${ms} ms`;
}

/**
 * The time of an entry ID for a terminal, as {@link formatTime} shows it;
 * past what a date holds, the ID's own digits (a number would round them:
 * 18446744073709551615 printed as 18446744073709552000).
 */
export function idTimeText(id: string): string {
  const ms = idTime(id);
  if (!Number.isFinite(ms)) return '-';
  return isoTime(ms) ?? `${idMsText(id)} ms`;
}

/** The time of an entry ID for a table cell, as {@link shortTime} shows it (or `<ms> ms` past what a date holds). */
export function idShortTime(id: string): string {
  const ms = idTime(id);
  return Number.isFinite(ms) ? shortTime(isoTime(ms) ?? `${idMsText(id)} ms`) : '-';
}

/** The millisecond part of an entry ID as written (`<ms>-<seq>`). */
function idMsText(id: string): string {
  const dash = id.indexOf('-');
  return dash < 0 ? id : id.slice(0, dash);
}

/** A time as `YYYY-MM-DD HH:MM:SS` in UTC, for table cells; `-` when unknown. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  // Anything but an ISO time (`<ms> ms` from formatTime) is shown as it is.
  return /^\d{4}-\d\d-\d\dT/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : iso;
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

// fatal: invalid UTF-8 is bytes, not text; ignoreBOM: a leading BOM is kept, so the text converts back to the same bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The payload as text when it is valid UTF-8 (it then converts back to the same bytes), else undefined. */
export function payloadText(payload: Uint8Array): string | undefined {
  try {
    return utf8.decode(payload);
  } catch {
    return undefined;
  }
}

/** How a payload is given in JSON output: `utf8` text, or `base64` for bytes that are not valid UTF-8. */
export type PayloadEncoding = 'utf8' | 'base64';

/**
 * JSON fields of a payload, always these two: `encoding` and `payload`
 * (the text, or the bytes in base64). `Buffer.from(payload, encoding)` gives back the exact bytes.
 */
export function payloadJson(payload: Uint8Array): { encoding: PayloadEncoding; payload: string } {
  const text = payloadText(payload);
  return text === undefined
    ? { encoding: 'base64', payload: Buffer.from(payload).toString('base64') }
    : { encoding: 'utf8', payload: text };
}

/**
 * A payload on one terminal line, never ambiguous: bytes that are not UTF-8
 * as `base64:<data>`; text as it is, unless it holds a character that is not
 * safe on a terminal (a newline, ESC, ...) or could be read as something
 * else (it starts with `base64:` or `"`): then as a JSON string, in quotes. An
 * empty payload is `""`.
 */
export function payloadDisplay(payload: Uint8Array): string {
  const text = payloadText(payload);
  if (text === undefined) return `base64:${Buffer.from(payload).toString('base64')}`;
  if (text === '') return '""'; // visible, and unambiguous: a text "" itself is shown escaped
  return isUnsafe(text) || text.startsWith('base64:') || text.startsWith('"') ? quoted(text) : text;
}

/**
 * Cuts `plain` (no colour codes) to `width` characters, ending with `…`
 * when it was longer; undefined width means no limit.
 */
export function cutTo(plain: string, width: number | undefined): string {
  if (width === undefined) return plain;
  const chars = Array.from(plain);
  if (chars.length <= width) return plain;
  return `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** Length in characters (code points), as {@link cutTo} counts. */
export function charLength(text: string): number {
  return Array.from(text).length;
}

/** Prints a value as indented JSON on stdout (see {@link jsonText}). */
export function printJson(value: unknown): void {
  process.stdout.write(`${jsonText(value, 2)}\n`);
}

/** A line the library logged, as the tail and the dashboard's tail say it: its message, and a loss's count. */
export function libraryLine(obj: object, msg: string | undefined): string {
  const count = (obj as { count?: unknown }).count;
  return `${msg ?? ''}${typeof count === 'number' ? ` (${count})` : ''}`;
}
