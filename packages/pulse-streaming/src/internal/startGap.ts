/**
 * A reader or sink started at a position (`{ after: id }`, a Date) before
 * entries that were trimmed or deleted before it started: those entries
 * came after its start, so they were its events, yet it can neither deliver
 * them nor count them (Redis keeps no trace of how many there were). The
 * usual case is a reader resumed from a saved cursor after `maxLen` moved
 * past it: it went on from the oldest entry left, silently (an outside
 * review of rolling deploys). It is said, as a loss of unknown size.
 */
import { compareIds } from './ids.js';
import { WARNING_CODE_UNKNOWN, warnOrEmit } from './lossReport.js';
import type { ResolvedStart } from './start.js';
import type { StreamHandle } from './streamHandle.js';
import { streamNow } from './streamNow.js';

/**
 * Says (a `warn` line, or a `PulseWarning` `PULSE_EVENTS_MAYBE_LOST` without
 * a logger) when entries after `start` may have been removed before now:
 * the start is before the stream's first entry and some of its entries were
 * trimmed or deleted (trims remove the oldest: unless they stopped right at
 * the start, some were after it), or an entry after the start was deleted
 * (its max-deleted-entry-id, which `XDEL` sets). `'oldest'` asks for what is
 * there and `'newest'` for what comes: neither has such a gap. Best effort:
 * a failed `XINFO` says nothing.
 */
export async function sayIfStartGap(stream: StreamHandle, start: ResolvedStart, who: string): Promise<void> {
  if (start.kind !== 'id' || start.id === '0-0') return;
  const now = await streamNow(stream.driver, stream.key);
  if (now.exists !== true || now.length === undefined || !Number.isFinite(now.added)) return;
  const { first } = now;
  const removed = now.added - now.length;
  const maxDeleted = now.maxDeleted ?? '0-0';
  const trimmedPast = removed > 0 && first !== undefined && compareIds(start.id, first) < 0;
  const deletedPast = compareIds(maxDeleted, start.id) > 0;
  if (!trimmedPast && !deletedPast) return;
  warnOrEmit(
    stream.logger,
    stream.hasLogger,
    { stream: stream.name, start: start.id, firstEntry: first, removed, maxDeletedId: maxDeleted },
    `stream ${stream.name}: entries after the start of this ${who} (${start.id}) may have been trimmed or deleted ` +
      `before it started (${removed} removed from the stream, its first entry now ${first ?? 'none'}): ` +
      `those are neither delivered nor counted lost, how many is unknown`,
    WARNING_CODE_UNKNOWN,
  );
}
