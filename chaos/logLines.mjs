// What a chaos consumer makes of one line the library logged: a loss (by ID or
// by count), a dead letter, or neither. Kept apart from worker.mjs so a test can
// feed it the library's own lines: a line misread as a loss fails a run that lost
// nothing ("losses logged but not counted").

/**
 * @param {string} text the line's message
 * @param {Record<string, unknown> | undefined} obj the line's fields
 * @returns {{ kind: 'stale' } | { kind: 'dead', ids: string[] | undefined } | { kind: 'lost', ids: string[] } | { kind: 'lostCount', count: number } | { kind: 'lostNoCount' } | undefined}
 */
export function classifyLine(text, obj) {
  // A stale ack's warning names dead letters among its possible causes: it reports no dead letter.
  if (/no longer pending/i.test(text)) return { kind: 'stale' };
  if (/dead-letter/i.test(text)) return { kind: 'dead', ids: Array.isArray(obj?.ids) ? obj.ids.map(String) : undefined };
  // A command that failed, or could not be made ('could not check the last reads for trimmed events'),
  // says nothing was lost: only that a check is to be tried again.
  if (/retrying|failed|could not/i.test(text)) return undefined;
  if (!/trimm|delet|remov|lost|expire|destroy/i.test(text)) return undefined;
  // Events this instance let go of, said maybe lost with their IDs (another instance may have taken
  // them before): not a report of a loss. If they were lost, the oracle finds them missing.
  if (/unless another instance took them before it/.test(text)) return undefined;
  if (Array.isArray(obj?.ids)) return { kind: 'lost', ids: obj.ids.map(String) };
  if (Number(obj?.count) > 0) return { kind: 'lostCount', count: Number(obj.count) };
  return { kind: 'lostNoCount' };
}
