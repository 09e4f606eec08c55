/** Sending a sink's merged acks: one XACK per stream, each stream's outcome on its own. */
import type { Logger } from '../logger.js';
import type { Outcome } from './batcher.js';
import type { Connection } from './driver.js';
import { streamKey } from './keys.js';
import type { SinkCounters } from './sinkState.js';

/**
 * Acks `batch` (stream name -> IDs) in group `group`, one XACK per stream,
 * and resolves (never rejects) to each stream's outcome, so that one stream's
 * failure (WRONGTYPE...) fails only the acks of that stream. Counts what
 * was acked, and what was no longer pending (`staleAcks`, logged).
 */
export async function sendAcks(
  conn: Connection,
  group: string,
  batch: ReadonlyMap<string, string[]>,
  counters: SinkCounters,
  logger: Logger,
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  await Promise.all(
    [...batch].map(async ([name, ids]) => {
      const key = streamKey(name);
      try {
        const value = Number(await conn.send(['XACK', key, group, ...ids], key));
        outcomes.set(name, { ok: true, value });
        counters.acked += value;
        // XACK counts only entries still pending: the others were handled
        // twice, or after they were given up. Which ones of a batch, it does not say.
        const stale = ids.length - value;
        if (stale > 0) {
          counters.staleAcks += stale;
          logger.warn(
            { stream: name, count: stale, ids },
            `${stale} of these acked events were no longer pending: acked already (here, or by another consumer after a redelivery), dead-lettered or reported lost`,
          );
        }
      } catch (error) {
        outcomes.set(name, { ok: false, error });
      }
    }),
  );
  return outcomes;
}
