/**
 * This process's clock for its own waits, deadlines and elapsed times:
 * monotonic, so a step of the host's wall clock (NTP correcting it, a VM
 * resumed) neither stalls a sink's liveness beats, claims and retries for the
 * length of a step back, nor makes every wait look over at a step forward.
 * Wall time (`Date.now()`) stays only where a time is compared with Redis's
 * or given by the user (a `startAt` date, entry IDs).
 *
 * It starts at the wall time when this module loads (not at 0 as
 * `performance.now()` does), so that 0 still reads as "never" to code that
 * keeps it as a sentinel.
 */
const origin = Date.now() - Math.floor(performance.now());

/**
 * Whole milliseconds on this process's monotonic clock (see the module
 * comment): whole as `Date.now()`'s, since delays computed from them go to
 * Redis, which refuses a fractional IDLE or PX.
 */
export function monotonicNow(): number {
  return origin + Math.floor(performance.now());
}
