/**
 * Events this instance keeps in its sink's delays set because their entry
 * was deleted while a handler worked on them (trimmed by `maxLen`, removed):
 * the in-progress touch of `process()` and `inProgress()` put them there for
 * a grace period, so that no other instance's claim reports them lost
 * meanwhile. Once acked, their entries are removed: on a stream without a
 * time to live the set keeps none (see `EXPIRE_DELAYS`), and claims, which
 * remove due entries, run only where events go idle, so each such event
 * left an entry for good (outside review T).
 */
import type { Logger } from '../logger.js';
import type { Driver } from './driver.js';
import { sinkKeys } from './keys.js';
import { errorText } from './redisErrors.js';

/**
 * At most `max` remembered: past it the oldest is forgotten (its entry goes
 * when a claim there finds it due). An object, not a constant, so that a
 * test can reach the limit with a few hundred events.
 */
export const heldGoneLimits = { max: 10_000 };

export class HeldGone {
  /** `stream name \n id` of each, oldest first. */
  readonly #held = new Set<string>();

  constructor(
    private readonly sink: string,
    private readonly driver: Driver,
    private readonly logger: Logger,
  ) {}

  /** Events `ids` of stream `name` were put in the delays set (found gone by an in-progress touch). */
  note(name: string, ids: readonly string[]): void {
    for (const id of ids) {
      const k = `${name}\n${id}`;
      this.#held.delete(k);
      this.#held.add(k);
      // Most leave at their ack; those settled otherwise (a nack, a dead letter, a handler never
      // done) would fill it: the oldest goes, never the cleanup of the newest (outside review U).
      if (this.#held.size > heldGoneLimits.max) this.#held.delete(this.#held.values().next().value as string);
    }
  }

  /** The events of stream `name` this instance keeps in the delays set now (a handler or a loop still has them). */
  ids(name: string): string[] {
    const out: string[] = [];
    const prefix = `${name}\n`;
    for (const k of this.#held) if (k.startsWith(prefix)) out.push(k.slice(prefix.length));
    return out;
  }

  /** Events `ids` of stream `name` were nacked: the nack takes them out of the delays set itself. */
  forget(name: string, ids: readonly string[]): void {
    for (const id of ids) this.#held.delete(`${name}\n${id}`);
  }

  /** Events `ids` of stream `name` were acked: those kept in the delays set leave it. */
  acked(name: string, ids: readonly string[]): void {
    if (this.#held.size === 0) return;
    const done = ids.filter((id) => this.#held.delete(`${name}\n${id}`));
    if (done.length === 0) return;
    const key = sinkKeys(name, this.sink).delays;
    this.driver
      .send(['ZREM', key, ...done], key)
      .catch((err: unknown) =>
        this.logger.debug(
          { stream: name, count: done.length, err: errorText(err) },
          'could not remove acked events from the delays set: a claim there removes them once due',
        ),
      );
  }
}
