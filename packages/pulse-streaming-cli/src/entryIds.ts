/**
 * Entry IDs as the CLI and the dashboard take them from operators: `<ms>-<seq>`
 * or `<ms>` alone, digits only, each part at most 2^64 - 1 (what Redis takes).
 */

const ENTRY_ID = /^\d+(-\d+)?$/;
const PART_MAX = 2n ** 64n - 1n;

/**
 * True when `id` is an entry ID Redis takes: a part over 2^64 - 1 is refused
 * here with the parameter's name (Redis' "Invalid stream ID" was a 500 on
 * some dashboard routes, and a 400 naming the library's own option on others).
 */
export function isEntryId(id: string): boolean {
  return ENTRY_ID.test(id) && id.split('-').every((part) => BigInt(part) <= PART_MAX);
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
