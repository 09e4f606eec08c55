/** Numbers, durations and times as the page shows them. */
import { formatDuration } from '../../duration.js';

/**
 * A name, topic, header or reason as the page shows it: as is, or, when it holds a control or a
 * bidi override (which would reorder the text around it: `invoice\u202Egnp.exe` read as
 * `invoiceexe.png`), quoted with those characters escaped, as the CLI prints it.
 */
export { displayText as shown } from '../../safeText.js';

/** A count with thousands separators, or `?` when unknown. */
export function count(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? '?' : Math.round(n).toLocaleString('en-US');
}

/** Events per second, one decimal under 10. */
export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  return n < 10 ? n.toFixed(1) : count(n);
}

/** A compact duration (duration.ts), `–` when unknown. */
export function duration(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '–' : formatDuration(ms, '–');
}

/**
 * A time in UTC, `YYYY-MM-DD HH:MM:SS.mmm`; `–` when unknown. An entry ID may
 * carry a time past what a Date holds (±8.64e15 ms: Redis takes any 64-bit
 * number, e.g. a producer's nanoseconds): it shows as `<ms> ms`, since one
 * such entry must not take the page down.
 */
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return `${ms} ms`;
  return d.toISOString().replace('T', ' ').replace('Z', '');
}

/** A size in bytes, KiB or MiB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The `#/...` link of a page. */
export function link(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}
