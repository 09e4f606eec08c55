/**
 * A compact duration, `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`: one
 * format for the terminal (format.ts) and the dashboard page (dashboard/ui),
 * which bundles this file. Pure: no Node or DOM API.
 */
export function formatDuration(ms: number, none = '-'): string {
  if (!Number.isFinite(ms) || ms < 0) return none;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const two = (n: number): string => String(Math.floor(n)).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${two((s % 86400) / 3600)}h`;
}

/**
 * The IDLE of a sink's pending entry: a nacked event's due time, or how long
 * ago it was nacked once due; else its idle time.
 */
export function pendingIdleText(e: { readonly idleMs: number; readonly nacked: boolean; readonly dueInMs?: number }): string {
  if (e.dueInMs !== undefined && e.dueInMs > 0) return `nacked, due in ${formatDuration(e.dueInMs)}`;
  if (e.nacked) return `nacked ${formatDuration(e.idleMs)} ago, due now`;
  return formatDuration(e.idleMs);
}
