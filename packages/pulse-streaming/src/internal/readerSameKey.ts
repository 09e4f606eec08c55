/**
 * Whether a stream key a reader checks is still the one it saw at its last
 * check (readerLoss.ts), or one deleted and created again, or gone back in
 * time, from the counters `XINFO STREAM` gives.
 */
import { compareIds } from './ids.js';

/** A stream's counters at a check: deleted is entries-added - length; lastGen '' when unknown. */
export interface Counters {
  readonly added: number;
  readonly deleted: number;
  readonly maxDeleted: string;
  readonly lastGen: string;
  /** The first entry's ID ('' empty or unknown). */
  readonly first?: string;
}

/**
 * Whether `now` can be the key `then` was seen as: entries-added and
 * max-deleted-entry-id only grow for one key; and a first entry newer than
 * the last ID generated then (or no entry at all) means every entry of then
 * is gone, each one counted in the deleted count, and one more when an entry
 * added since was deleted too (max-deleted-entry-id past that last ID). A
 * key created again that caught up with both counters shows by the last (an
 * empty key at the start, or one whose entries were all read, may have
 * nothing ahead to show otherwise). Without the one more, a reader that had
 * read everything, across a restart of an empty Redis whose key came back
 * with an entry deleted before it read it, counted nothing and said nothing.
 */
export function sameKey(then: Counters, now: Counters): boolean {
  if (now.added < then.added || compareIds(now.maxDeleted, then.maxDeleted) < 0) return false;
  if (then.lastGen === '') return true;
  const empty = now.added - now.deleted === 0;
  const emptied = empty || (now.first !== undefined && now.first !== '' && compareIds(now.first, then.lastGen) > 0);
  if (!emptied) return true;
  const newDeleted = compareIds(now.maxDeleted, then.lastGen) > 0 ? 1 : 0;
  return now.deleted - then.deleted >= then.added - then.deleted + newDeleted;
}
