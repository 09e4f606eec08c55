/**
 * IDs a reader read, kept so that it can go back to one of them when its
 * stream goes back in time under it (a Redis restarted from an older
 * snapshot, a failover to a replica that was behind): entries added after
 * that may get IDs before its cursor, which `XREAD` would jump over. The
 * newest mark still in the stream is from before the fault, so reading on
 * from it delivers every new entry (and again those read after it that
 * survived: duplicates after a fault, never a loss).
 *
 * A few marks only, spaced about geometrically in time: dense for the last
 * reads, sparse back to the oldest, so that a snapshot minutes or hours old
 * still finds one not long before it.
 */

import { compareIds } from './ids.js';

/** Most marks kept per stream. */
const MAX_MARKS = 24;

interface Mark {
  readonly id: string;
  readonly at: number;
}

/** The marks of one stream of a reader (see the file comment). */
export class ReadMarks {
  #marks: Mark[] = [];

  /** Records `id`, the last entry of a batch read at `now` (ms, monotonic). */
  note(id: string, now: number): void {
    const marks = this.#marks;
    marks.push({ id, at: now });
    if (marks.length <= MAX_MARKS) return;
    // Drop the inner mark whose neighbours are closest, relative to their age:
    // the spacing grows with age.
    let drop = 1;
    let best = Number.POSITIVE_INFINITY;
    for (let i = 1; i < marks.length - 1; i++) {
      const prev = marks[i - 1] as Mark;
      const next = marks[i + 1] as Mark;
      const ratio = (next.at - prev.at) / (now - prev.at + 1);
      if (ratio < best) {
        best = ratio;
        drop = i;
      }
    }
    marks.splice(drop, 1);
  }

  /** The marked IDs, oldest first. */
  ids(): string[] {
    return this.#marks.map((m) => m.id);
  }

  /** The cursor went back to `id`: marks after it are of entries that are gone. */
  rewind(id: string): void {
    this.#marks = this.#marks.filter((m) => compareIds(m.id, id) <= 0);
  }
}
