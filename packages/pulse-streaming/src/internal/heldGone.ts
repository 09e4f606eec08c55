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

/** At most this many remembered: past it, the next claim on the stream removes their entries once due. */
const MAX_HELD = 10_000;

export class HeldGone {
  /** Stream name -> IDs kept in the delays set. */
  readonly #held = new Map<string, Set<string>>();
  #count = 0;

  constructor(
    private readonly sink: string,
    private readonly driver: Driver,
    private readonly logger: Logger,
  ) {}

  /** Events `ids` of stream `name` were put in the delays set (found gone by an in-progress touch). */
  note(name: string, ids: readonly string[]): void {
    for (const id of ids) {
      if (this.#count >= MAX_HELD) return;
      const set = this.#held.get(name) ?? new Set<string>();
      if (set.has(id)) continue;
      set.add(id);
      this.#held.set(name, set);
      this.#count++;
    }
  }

  /** Events `ids` of stream `name` were acked: those kept in the delays set leave it. */
  acked(name: string, ids: readonly string[]): void {
    const set = this.#held.get(name);
    if (!set) return;
    const done = ids.filter((id) => set.delete(id));
    if (set.size === 0) this.#held.delete(name);
    if (done.length === 0) return;
    this.#count -= done.length;
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
