/** Splits an entry ID into its two numbers. IDs are compared as bigints: sequences can exceed 2^53. */
function parts(id: string): [bigint, bigint] {
  const dash = id.indexOf('-');
  if (dash < 0) return [BigInt(id), 0n];
  return [BigInt(id.slice(0, dash)), BigInt(id.slice(dash + 1))];
}

/** Whether `s[from, from + n)` can be compared as text: not empty, a digit first, not 0 then more. */
function plain(s: string, from: number, n: number): boolean {
  const c = s.charCodeAt(from);
  return n > 0 && c >= 48 && c <= 57 && (c !== 48 || n === 1);
}

/**
 * Compares two decimal numbers given as `s[from, to)` without leading zeros:
 * the longer is larger, else the text decides. Undefined when either is
 * empty, has a leading zero or starts with no digit (compared as bigints then).
 */
function compareDecimals(a: string, af: number, at: number, b: string, bf: number, bt: number): number | undefined {
  const al = at - af;
  const bl = bt - bf;
  if (!plain(a, af, al) || !plain(b, bf, bl)) return undefined;
  if (al !== bl) return al < bl ? -1 : 1;
  for (let i = 0; i < al; i++) {
    const d = a.charCodeAt(af + i) - b.charCodeAt(bf + i);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * Negative, zero or positive as `a` is before, equal to or after `b`. On
 * every acked and delivered event: IDs as Redis writes them (no leading
 * zeros) are compared as text, without parsing (bigints cost a sink 4% of
 * its CPU per event, profiled).
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const ad = a.indexOf('-');
  const bd = b.indexOf('-');
  // Of one length, the dash at one place (the common case: one millisecond's length, sequences of
  // one length): digits compare as text, leading zeros or not. The native comparison: the loop
  // below cost a sink 5% of its CPU, on every acked ID (noteAcked in expiryLoss.ts, profiled).
  if (a.length === b.length && ad === bd && ad !== 0 && plain(a, 0, 1) && plain(b, 0, 1)) return a < b ? -1 : 1;
  const ae = ad < 0 ? a.length : ad;
  const be = bd < 0 ? b.length : bd;
  const ms = compareDecimals(a, 0, ae, b, 0, be);
  if (ms !== undefined) {
    if (ms !== 0) return ms;
    const seq = compareDecimals(a, ad < 0 ? a.length : ad + 1, a.length, b, bd < 0 ? b.length : bd + 1, b.length);
    // '5' and '5-0' are the same ID; an empty sequence reads as 0.
    if (seq !== undefined && ad >= 0 === bd >= 0) return seq;
  }
  return compareParsed(a, b);
}

function compareParsed(a: string, b: string): number {
  const [am, as] = parts(a);
  const [bm, bs] = parts(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

/** The milliseconds part of an entry ID. */
export function idTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/** The last possible ID before millisecond `ms`, so that reading after it includes `<ms>-0`. */
export function idBefore(ms: number): string {
  return ms <= 0 ? '0-0' : `${ms - 1}-18446744073709551615`;
}

/** The ID just before `id` ('0-0' for the first): a range up to it leaves `id` out. */
export function previousId(id: string): string {
  const [ms, seq] = parts(id);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0-0';
}

/** The earlier of two stream IDs. */
export function minId(a: string, b: string): string {
  return compareIds(a, b) <= 0 ? a : b;
}

/** The later of two stream IDs (undefined: none). */
export function maxId(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/** How many of `n` IDs in order (`idOf(i)`: the i-th) are up to `id`: the entries of a batch read that were there by then. */
export function countUpTo(n: number, idOf: (i: number) => string, id: string): number {
  if (n === 0 || compareIds(idOf(n - 1), id) <= 0) return n;
  let i = 0;
  while (i < n && compareIds(idOf(i), id) <= 0) i++;
  return i;
}

/** What `pick` makes of each of `items`, by stream name, in order (the same name string every time: no key per item). */
function grouped<T extends { readonly streamName: string }, U>(items: Iterable<T>, pick: (item: T) => U): Map<string, U[]> {
  const out = new Map<string, U[]>();
  for (const item of items) {
    const same = out.get(item.streamName);
    if (same) same.push(pick(item));
    else out.set(item.streamName, [pick(item)]);
  }
  return out;
}

/** IDs of `events` by stream name. */
export function idsByStream(events: Iterable<{ readonly id: string; readonly streamName: string }>): Map<string, string[]> {
  return grouped(events, (ev) => ev.id);
}

/** `items` by stream name, in order. */
export function byStream<T extends { readonly streamName: string }>(items: Iterable<T>): Map<string, T[]> {
  return grouped(items, (item) => item);
}
