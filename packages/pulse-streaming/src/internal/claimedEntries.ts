/**
 * The entries of events a claim took: the claim script returns their IDs
 * and delivery counts only (see `claim` in scripts.ts), because entries
 * turned into Lua tables and back cost Redis more than the claim itself
 * (measured: 10-12 µs per event against 3-4). Read here with one XRANGE
 * over their span, then one XRANGE per event for those the span's COUNT did
 * not reach (events of other consumers between them); those found in
 * neither were deleted or trimmed since the claim.
 */
import type { Connection } from './connection.js';
import { compareIds } from './ids.js';
import { entries, type RawEntry } from './replies.js';

/** Entries of other consumers read and dropped, at most, per claimed event (plus a few). */
const SPAN_FACTOR = 2;
const SPAN_SLACK = 16;

/**
 * Reads the entries of `ids` (ascending, as the claim returns them) of
 * stream `key`: `got` in ID order, `gone` the IDs no longer in the stream.
 */
export async function claimedEntries(
  conn: Connection,
  key: string,
  ids: readonly string[],
): Promise<{ got: RawEntry[]; gone: string[] }> {
  const first = ids[0];
  const last = ids[ids.length - 1];
  if (first === undefined || last === undefined) return { got: [], gone: [] };
  const limit = SPAN_FACTOR * ids.length + SPAN_SLACK;
  const span = entries(await conn.send(['XRANGE', key, first, last, 'COUNT', limit], key));
  const wanted = new Set(ids);
  const found = new Map<string, RawEntry>();
  for (const e of span) if (wanted.has(e[0])) found.set(e[0], e);
  // The span ended before `last` when it came back full: what lies after its last entry is read one by one.
  const reached = span.length < limit ? last : (span[span.length - 1]?.[0] ?? last);
  const rest = ids.filter((id) => !found.has(id) && compareIds(id, reached) > 0);
  if (rest.length > 0) {
    const replies = await Promise.all(rest.map((id) => conn.send(['XRANGE', key, id, id], key)));
    for (const r of replies) {
      const e = entries(r)[0];
      if (e) found.set(e[0], e);
    }
  }
  const got: RawEntry[] = [];
  const gone: string[] = [];
  for (const id of ids) {
    const e = found.get(id);
    if (e) got.push(e);
    else gone.push(id);
  }
  return { got, gone };
}
