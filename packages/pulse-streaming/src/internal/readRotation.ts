/**
 * Which streams a sink's checked read takes when it reads more streams than
 * one read can serve at a useful COUNT. Every checked read carries a trim
 * check of each stream it reads (`checkTrimmed`: a handful of commands per
 * stream), and a read asks at most `maxPolled` in all (`countPerStream`), so
 * a read over 1000 streams asked 1 or 2 entries of each and paid 1000 checks
 * for them: a sink over 1000 streams with a backlog ran at 0.14-0.24 x a raw
 * XREADGROUP loop (issue 19's scaling curve). So each checked read takes at
 * most {@link rotationSize} streams, enough for {@link LEAST_USEFUL_COUNT}
 * each: those whose last read came back full (more to read) or that were
 * never read first, in turn, then drained ones (whose last read came back
 * short), in turn. The other drained streams are probed in the same step:
 * one XREADGROUP of at most one entry each, without trim check (as a
 * blocking read, verified by a later check), so that an event added to a
 * quiet stream while others hold a backlog is read at once, not when the
 * quiet stream's turn comes (outside review AG: with 100 quiet streams it
 * waited up to 11,000 events of the busy ones). Blocking reads (nothing
 * left to read) still cover every stream.
 */
import { countPerStream } from './loops.js';

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

/** What {@link readSize} sizes a read from. */
export interface ReadSizing {
  readonly sorted: Sorted<unknown>;
  /** Streams the read takes (all of them for a blocking read). */
  readonly size: number;
  /** Entries the subscribers have room for (at least `maxPolled`). */
  readonly room: number;
  readonly maxPolled: number;
  /** Streams of the group whose last read came back full (see `countPerStream`). */
  readonly busy: number | undefined;
  readonly blocking: boolean;
  /** For a read sent ahead of the reply of another: the room it may take (see `ReadAhead`). */
  readonly ahead: number | undefined;
}

/**
 * How much one read asks: its COUNT per stream, and how many drained streams
 * it probes (one entry each); undefined for a read ahead that does not fit.
 * COUNT goes to every stream of the read: one busy stream's share given to
 * all of them (the others filled up since) brought up to streams x
 * maxPolled, given back past the bound and, past what is remembered for
 * taking back, left to a claim a grace period later (outside review AB). So
 * a read never asks more than the subscribers have room for, probes (up to
 * half the room) included.
 */
export function readSize(o: ReadSizing): { count: number; probeMost: number } | undefined {
  const { size, room, ahead } = o;
  let probeMost = o.blocking ? 0 : Math.min(ReadRotation.probeable(o.sorted, size), Math.floor(room / 2));
  let count = Math.min(countPerStream(o.maxPolled, size, o.busy, 1), Math.max(1, Math.floor((room - probeMost) / size)));
  if (ahead !== undefined) {
    // A read sent ahead keeps the split of any read (up to half for probes): given only what
    // its busy share left, reads ahead probed 2 to 12 of 100 quiet streams while taking 96
    // busy events, and a quiet stream's news waited 470 busy events (the bound: 400).
    probeMost = Math.min(probeMost, Math.floor(ahead / 2));
    const fits = Math.floor((ahead - probeMost) / size);
    // Without probes, as before: only a read at the usual COUNT goes ahead.
    if (fits < (probeMost > 0 ? 1 : count)) return undefined;
    count = Math.min(count, fits);
  }
  return { count, probeMost };
}

/** A group's streams as the rotation sees them now. */
export interface Sorted<S> {
  /** Last read came back full, or never read: more to read, as far as known. */
  readonly more: readonly S[];
  /** Last read came back short. */
  readonly drained: readonly S[];
}

/** What one checked read takes: streams read with a trim check, and drained ones probed for one entry each. */
export interface ReadPlan<S> {
  readonly read: readonly S[];
  readonly probe: readonly S[];
}

/** Where each group's rotation stands, in its streams with more to read and in its drained ones. */
interface Cursor {
  more: number;
  drained: number;
}

/** The rotation of each read group (a hash slot group on a cluster, one group on a single node). */
export class ReadRotation<S extends object> {
  readonly #drained = new WeakSet<S>();
  readonly #cursors = new Map<number, Cursor>();

  /**
   * `streams` as the next checked read takes them. Those `check(s)` says
   * must be read with a trim check (a resync after a reconnect) count as
   * having more to read: never probed, they come first.
   */
  sort(streams: readonly S[], check: (s: S) => boolean): Sorted<S> {
    const more: S[] = [];
    const drained: S[] = [];
    for (const s of streams) (this.#drained.has(s) && !check(s) ? drained : more).push(s);
    return { more, drained };
  }

  /** How many drained streams a read of `size` streams leaves to probe. */
  static probeable(sorted: Sorted<unknown>, size: number): number {
    const total = sorted.more.length + sorted.drained.length;
    if (total <= size) return 0;
    return Math.max(0, sorted.drained.length - Math.max(0, size - sorted.more.length));
  }

  /**
   * The next checked read of `group`: `size` streams (all when they are that
   * few), those with more first, and up to `probeMost` of the other drained
   * ones to probe. Moves the rotation on: call it only for a read that is sent.
   */
  plan(group: number, sorted: Sorted<S>, size: number, probeMost: number): ReadPlan<S> {
    const { more, drained } = sorted;
    if (more.length + drained.length <= size) return { read: [...more, ...drained], probe: [] };
    let cursor = this.#cursors.get(group);
    if (cursor === undefined) {
      cursor = { more: 0, drained: 0 };
      this.#cursors.set(group, cursor);
    }
    const read: S[] = [];
    const probe: S[] = [];
    const fromMore = Math.min(more.length, size);
    const fromDrained = Math.min(drained.length, size - fromMore);
    cursor.more = take(more, cursor.more, fromMore, read);
    const probed = Math.min(drained.length - fromDrained, probeMost);
    const at = take(drained, cursor.drained, fromDrained, read);
    cursor.drained = take(drained, at, probed, probe);
    return { read, probe };
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
