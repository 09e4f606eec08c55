/**
 * Settling calls of `process()` (a nack, the dead letter of an event that
 * does not decode) retried while Redis cannot take them. Retried until Redis
 * answers, not for a grace period: after an outage longer than that, a
 * Redis restarted from an older snapshot has neither the event nor its
 * pending entry, and only a call that lands finds it gone (then counted lost,
 * or dead-lettered from the copy held), which nothing else would redeliver
 * (outside review R). Never past `stopping` (the sink closed; a run whose
 * signal aborted stops waiting for it but lets it go on: process.ts
 * `untilAborted`), nor on NOGROUP (the group is gone: retrying cannot help,
 * the read path accounts for it), nor on an error retrying cannot fix.
 */
import type { Logger } from '../logger.js';
import { Backoff, sleep } from './backoff.js';
import { errorText, isReplyError, isRetryable } from './redisErrors.js';

/** How `untilAnswered` ended, when not answered: the last error, and why it stopped. */
export type NotAnswered = { readonly why: 'nogroup' | 'refused' | 'stopped'; readonly err: unknown };

/**
 * Calls `attempt` until it resolves, or `NotAnswered` says why not. The
 * first failure is a `warn` (`what` failed, retrying), the next ones `debug`
 * (Redis may be away for minutes), a success after failures an `info`.
 */
/** A settling call (a nack, a dead letter) the sink closed on before Redis answered it: given up. */
export const NOT_ANSWERED = new Error('not answered before the sink closed');

export async function untilAnswered(
  attempt: () => Promise<void>,
  o: { readonly stopping: AbortSignal; readonly logger: Logger; readonly what: string; readonly fields: object },
): Promise<NotAnswered | undefined> {
  const backoff = new Backoff(50, 5000);
  for (;;) {
    try {
      await attempt();
      if (backoff.failures > 0) o.logger.info({ ...o.fields, failures: backoff.failures }, `${o.what} succeeded after retries`);
      return undefined;
    } catch (err) {
      if (isReplyError(err, 'NOGROUP')) return { why: 'nogroup', err };
      if (!isRetryable(err)) return { why: 'refused', err };
      if (o.stopping.aborted) return { why: 'stopped', err };
      const retryInMs = backoff.next();
      (backoff.failures === 1 ? o.logger.warn : o.logger.debug).call(
        o.logger,
        { ...o.fields, failures: backoff.failures, retryInMs, err: errorText(err) },
        `${o.what} failed, retrying`,
      );
      await sleep(retryInMs, o.stopping);
    }
  }
}

/**
 * `p`, or undefined at once when `signal` aborts (`p` goes on); no listener
 * is left behind. For a `process()` run whose signal aborted: it stops
 * waiting for a settling call `untilAnswered` still retries.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
