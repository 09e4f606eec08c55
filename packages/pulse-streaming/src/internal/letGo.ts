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
      if (old && old.s.letGo.get(old.id) === old.seq) old.s.letGo.delete(old.id);
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

/**
 * Takes the events of `s` this instance let go of after `after` up to
 * `upTo`, which Redis lost, and says them: pending for no one now, no read,
 * claim or check would ever meet them. Said with their number and IDs, not
 * counted: another instance may have taken and handled them before (a
 * nacked event at once, one given back after the grace period), and a count
 * that may hold events handled is no count. Undefined when there are none.
 */
export function sayLetGo(s: SinkStream, after: string, upTo: string | undefined): string | undefined {
  if (upTo === undefined || s.letGo.size === 0) return undefined;
  const lost: string[] = [];
  for (const id of s.letGo.keys())
    if (compareIds(id, after) > 0 && compareIds(id, upTo) <= 0) {
      lost.push(id);
      s.letGo.delete(id);
    }
  if (lost.length === 0) return undefined;
  lost.sort(compareIds);
  return `${lost.length} event(s) this instance read and let go of unhandled (given back, or nacked) were among them and are lost, unless another instance took and handled them before it (${idList(lost)})`;
}

/** The key of `s` went (a key created anew at `before` keeps what came from it): what was let go of it is forgotten. */
export function forgetLetGo(s: SinkStream, before: string | undefined): void {
  if (before === undefined) s.letGo.clear();
  else for (const id of s.letGo.keys()) if (compareIds(id, before) < 0) s.letGo.delete(id);
}

/** IDs for a log line: the first few, and how many more. */
function idList(ids: readonly string[]): string {
  const shown = ids.slice(0, 5).join(', ');
  return ids.length > 5 ? `${shown} and ${ids.length - 5} more` : shown;
}
