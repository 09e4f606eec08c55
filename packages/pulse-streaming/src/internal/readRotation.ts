/**
 * Which streams a sink's checked read takes when it reads more streams than
 * one read can serve at a useful COUNT. Every checked read carries a trim
 * check of each stream it reads (`checkTrimmed`: a handful of commands per
 * stream), and a read asks at most `maxPolled` in all (`countPerStream`), so
 * a read over 1000 streams asked 1 or 2 entries of each and paid 1000 checks
 * for them: a sink over 1000 streams with a backlog ran at 0.14-0.24 x a raw
 * XREADGROUP loop (issue 19's scaling curve). So each checked read takes at
 * most {@link rotationSize} streams, enough for {@link LEAST_USEFUL_COUNT}
 * each; which ones rotates. Streams whose last read came back full (more to
 * read) or that were never read come first; a quarter of the slots go, in
 * turn, to those whose last read came back short, so that a stream that gets
 * events while others hold a backlog is read within a rotation of them, not
 * once the backlog is gone. Blocking reads (nothing left to read) still
 * cover every stream.
 */

/** Entries per stream below which a checked read's trim checks cost more than the entries they guard are worth. */
export const LEAST_USEFUL_COUNT = 50;

/**
 * Streams a checked read takes even when `maxPolled` is small: a sink over
 * a few streams reads them all each time, as a sink always did (a small
 * `maxPolled` is a choice of small reads, not of reading streams in turn).
 */
export const LEAST_ROTATION = 8;

/**
 * Streams one checked read takes at most: `maxPolled` split at
 * {@link LEAST_USEFUL_COUNT} each, and never fewer than {@link LEAST_ROTATION}
 * (20 at the default `maxPolled` of 1000).
 */
export function rotationSize(maxPolled: number): number {
  return Math.max(LEAST_ROTATION, Math.floor(maxPolled / LEAST_USEFUL_COUNT));
}

/** Where each group's rotation stands, in its streams with more to read and in its drained ones. */
interface Cursor {
  more: number;
  drained: number;
}

/** The rotation of each read group (a hash slot group on a cluster, one group on a single node). */
export class ReadRotation<S extends object> {
  /** Streams whose last read came back short: nothing more to read there, as far as known. */
  readonly #drained = new WeakSet<S>();
  readonly #cursors = new Map<number, Cursor>();

  /** At most `size` of `streams` for the next checked read of `group`: all of them when they are that few. */
  pick(group: number, streams: readonly S[], size: number): readonly S[] {
    if (streams.length <= size) return streams;
    const more: S[] = [];
    const drained: S[] = [];
    for (const s of streams) (this.#drained.has(s) ? drained : more).push(s);
    let cursor = this.#cursors.get(group);
    if (cursor === undefined) {
      cursor = { more: 0, drained: 0 };
      this.#cursors.set(group, cursor);
    }
    // A quarter of the slots for the drained streams in turn, never all of them while some stream has more.
    const kept = Math.min(drained.length, Math.ceil(size / 4), more.length > 0 ? size - 1 : size);
    const fromMore = Math.min(more.length, size - kept);
    const fromDrained = Math.min(drained.length, size - fromMore);
    const out: S[] = [];
    cursor.more = take(more, cursor.more, fromMore, out);
    cursor.drained = take(drained, cursor.drained, fromDrained, out);
    return out;
  }

  /** What a read of `streams` found: `short(s)` when it brought less than it asked of `s`. */
  settle(streams: readonly S[], short: (s: S) => boolean): void {
    for (const s of streams) {
      if (short(s)) this.#drained.add(s);
      else this.#drained.delete(s);
    }
  }

  /** Whether every one of `streams` came back short on its last read (a stream never read has more, as far as known). */
  allDrained(streams: readonly S[]): boolean {
    for (const s of streams) if (!this.#drained.has(s)) return false;
    return true;
  }
}

/** Appends `n` of `list` from index `at` (wrapping) to `out`; returns where the next take starts. */
function take<S>(list: readonly S[], at: number, n: number, out: S[]): number {
  if (list.length === 0) return 0;
  const start = at % list.length;
  for (let i = 0; i < n; i++) out.push(list[(start + i) % list.length] as S);
  return (start + n) % list.length;
}
