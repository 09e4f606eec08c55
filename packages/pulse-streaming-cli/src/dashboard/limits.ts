/**
 * The dashboard's timings in one object, internal to the package (not
 * exported by `createDashboard`'s module): tests shorten them so that a
 * stalled Redis or a refresh cycle takes a second, not a minute.
 */

/** Timings of the dashboard; see each field for its default. */
export const LIMITS = {
  /**
   * Longest wait for Redis of a read (`api/*` GET) or of one live snapshot:
   * past it the request answers HTTP 500 and a live page gets a `failure`
   * event, so a Redis that stops answering (a slow script, a fork, a network
   * path that drops packets) never leaves the page showing old figures as
   * live. Actions (POST) have none: failing one that may still complete
   * would invite a second replay. @defaultValue 5000
   */
  readMs: 5000,
  /** The same for a `/metrics` scrape, which reads every stream (Prometheus's own scrape timeout is 10 s). @defaultValue 10000 */
  metricsMs: 10_000,
  /** How often a live overview is sent again. @defaultValue 2000 */
  overviewEveryMs: 2000,
  /** How often a live stream page is sent again. @defaultValue 1000 */
  streamEveryMs: 1000,
  /** The tail sends what arrived at most this often, so a busy stream cannot flood the page. @defaultValue 200 */
  tailFlushMs: 200,
  /**
   * How long a listing of stream names (a `SCAN` of the whole keyspace) is
   * used before it is listed again, in the background, one listing at a time.
   * A stream created meanwhile shows within this time (at once on a page
   * (re)load and in `/metrics`). @defaultValue 30000
   */
  namesMaxAgeMs: 30_000,
  /**
   * Most live views (`api/live`, `api/tail`: a page each) open at once; one
   * more is answered 503 until one closes. @defaultValue 64
   */
  liveMax: 64,
};

/** Redis did not answer a read within its deadline. */
export class RedisTimeout extends Error {
  override readonly name = 'RedisTimeout';
}

/**
 * `work`, or a {@link RedisTimeout} once `ms` have passed. The work itself
 * goes on (a client's `commandTimeout` ends its commands).
 */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RedisTimeout(`Redis did not answer within ${ms / 1000} s (busy, stopped, or unreachable)`)),
      ms,
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
