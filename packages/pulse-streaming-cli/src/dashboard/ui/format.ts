/** Numbers, durations and times as the page shows them. */

/** A count with thousands separators, or `?` when unknown. */
export function count(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? '?' : Math.round(n).toLocaleString('en-US');
}

/** Events per second, one decimal under 10. */
export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  return n < 10 ? n.toFixed(1) : count(n);
}

/** A compact duration: `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const two = (n: number): string => String(Math.floor(n)).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${two((s % 86400) / 3600)}h`;
}

/** A time in UTC, `YYYY-MM-DD HH:MM:SS.mmm`. */
export function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
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
