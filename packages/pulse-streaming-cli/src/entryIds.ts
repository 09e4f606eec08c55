/**
 * Entry IDs as the CLI and the dashboard take them from operators: `<ms>-<seq>`
 * or `<ms>` alone, digits only (Redis refuses parts over 2^64 - 1 itself).
 */

const ENTRY_ID = /^\d+(-\d+)?$/;

/** True when `id` has the shape of an entry ID. */
export function isEntryId(id: string): boolean {
  return ENTRY_ID.test(id);
}

/**
 * `id` (digits, `-`, digits or digits alone) in the one form Redis answers
 * with: `5`, `5-0` and `05-0` name one entry, `5-0` (a bare `5` as both ends
 * of an XRANGE would cover every entry of millisecond 5).
 */
export function canonicalEntryId(id: string): string {
  const [ms, seq = '0'] = id.split('-');
  return `${BigInt(ms as string)}-${BigInt(seq)}`;
}
