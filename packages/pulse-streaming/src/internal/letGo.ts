/**
 * Events a sink instance let go of unhandled: given back before any code saw
 * them (a loop that left, a stalled subscriber, `close()`), or nacked. They
 * wait in the group, pending for no one in particular, until a claim takes
 * them. When Redis then loses them (a rollback: a restart from an older
 * snapshot or a failover to a replica that was behind; a restart without
 * persistence; the stream deleted or expired after the sink's last check),
 * no read, claim or check of this instance ever meets them again: only this
 * record lets the check that finds the loss say them (outside review W).
 * Said with their number and IDs as maybe lost, not counted: another
 * instance may have taken and handled them before the loss.
 */
import { compareIds } from './ids.js';
import type { SinkStream } from './sinkState.js';

/**
 * At most this many events let go of are remembered per sink instance, the
 * oldest forgotten first: a loss takes recent writes, and a sink over
 * thousands of streams whose nacked events other instances handle must not
 * grow without bound (a few MB at most).
 */
export const LET_GO_KEPT = 16_384;

/**
 * The order in which a sink instance let events go, across its streams, for
 * the bound (`LET_GO_KEPT`). Each stream keeps its own record
 * (`SinkStream.letGo`: ID -> the sequence number it was let go with); an
 * entry here whose stream no longer has that ID with that number (delivered
 * again, said, forgotten, or let go again later) only waits to be dropped.
 */
export class LetGoLog {
  #order: Array<{ readonly s: SinkStream; readonly id: string; readonly seq: number }> = [];
  #head = 0;
  #seq = 0;

  /** Events `ids` of stream `s` were let go of unhandled. */
  add(s: SinkStream | undefined, ids: readonly string[]): void {
    if (s === undefined) return;
    for (const id of ids) {
      const seq = ++this.#seq;
      s.letGo.set(id, seq);
      this.#order.push({ s, id, seq });
    }
    while (this.#order.length - this.#head > LET_GO_KEPT) {
      const old = this.#order[this.#head++];
      if (old && old.s.letGo.get(old.id) === old.seq) {
        old.s.letGo.delete(old.id);
        // Forgotten, not lost from sight: a loss that may take it says its number is a lower bound.
        if (old.s.letGoForgotten === undefined || compareIds(old.id, old.s.letGoForgotten) > 0) old.s.letGoForgotten = old.id;
      }
    }
    // Compacted now and then: what was dropped must not be kept alive by the array.
    if (this.#head > LET_GO_KEPT) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** Event `id` of `s` came to this instance again (read, claimed or taken back): what happens to it next is said there. */
export function heldAgain(s: SinkStream, id: string): void {
  if (s.letGo.size > 0) s.letGo.delete(id);
}

/** Events `ids` of `s` were counted lost (a claim found them deleted...): said once, not again by a loss of Redis'. */
export function forgetIds(s: SinkStream | undefined, ids: readonly string[]): void {
  if (s === undefined || s.letGo.size === 0) return;
  for (const id of ids) s.letGo.delete(id);
}

/**
 * The newest event of `s` this instance read or let go of: what the checks
 * that find a rollback or a key gone look for, and say let-go events up to
 * (a claim of another instance's events does not move `lastRead`, and those
 * it nacked must be found lost too).
 */
export function newestReadOrLetGo(s: SinkStream): string | undefined {
  let newest = s.lastRead;
  for (const id of s.letGo.keys()) if (newest === undefined || compareIds(id, newest) > 0) newest = id;
  return newest;
}

/** What `sayLetGo` says: the line's text, and every ID it is about (the text names the first few). */
export interface LetGoLoss {
  readonly text: string;
  readonly ids: readonly string[];
}

/**
 * Takes the events of `s` this instance let go of after `after` up to
 * `upTo`, which Redis lost, and says them: pending for no one now, no read,
 * claim or check would ever meet them. Said with their number and IDs, not
 * counted: another instance may have taken them before the loss (a nacked
 * event at once, one given back after the grace period), and a count that
 * may hold events handled is no count. A number that events forgotten by
 * the bound may add to says so ("at least"). Undefined when there are none.
 */
export function sayLetGo(s: SinkStream, after: string, upTo: string | undefined): LetGoLoss | undefined {
  if (upTo === undefined) return undefined;
  const lost: string[] = [];
  for (const id of s.letGo.keys())
    if (compareIds(id, after) > 0 && compareIds(id, upTo) <= 0) {
      lost.push(id);
      s.letGo.delete(id);
    }
  const forgotten = s.letGoForgotten !== undefined && compareIds(s.letGoForgotten, after) > 0;
  if (lost.length === 0 && !forgotten) return undefined;
  lost.sort(compareIds);
  // Said once: a later loss has its own record to say.
  if (forgotten) s.letGoForgotten = undefined;
  const older = 'events it let go of long before, and no longer remembers, may be among them too';
  if (lost.length === 0)
    return {
      text: `events this instance let go of unhandled (given back, or nacked) long before, and no longer remembers, may be among them`,
      ids: lost,
    };
  return {
    text: `${forgotten ? 'at least ' : ''}${lost.length} event(s) this instance read and let go of unhandled (given back, or nacked) were among them and are lost, unless another instance took them before it (${idList(lost)})${forgotten ? `; ${older}` : ''}`,
    ids: lost,
  };
}

/** The key of `s` went (a key created anew at `before` keeps what came from it): what was let go of it is forgotten. */
export function forgetLetGo(s: SinkStream, before: string | undefined): void {
  s.letGoForgotten = undefined;
  if (before === undefined) s.letGo.clear();
  else for (const id of s.letGo.keys()) if (compareIds(id, before) < 0) s.letGo.delete(id);
}

/** IDs for a log line: the first few, and how many more. */
function idList(ids: readonly string[]): string {
  const shown = ids.slice(0, 5).join(', ');
  return ids.length > 5 ? `${shown} and ${ids.length - 5} more` : shown;
}
