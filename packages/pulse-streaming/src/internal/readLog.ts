/**
 * What one sink instance read of a stream since its last trim check: per
 * read, its first and last ID and how many entries it brought. A consumer
 * group destroyed under the sink (`XGROUP DESTROY` by another program) takes
 * its position with it; the last one a check kept (`positionsKey`) is where
 * the count of what was trimmed meanwhile starts, less what this instance
 * read after it (sinkRecreate.ts).
 */
import { compareIds } from './ids.js';

/** Reads kept at most: past it, what was read since the last check is said unknown (a check prunes it every read under load). */
const MAX_READS = 1024;

interface Read {
  readonly first: string;
  readonly last: string;
  readonly count: number;
}

export class ReadLog {
  #reads: Read[] = [];
  /** Reads up to this ID were pruned: a count from before it is unknown. */
  #prunedTo = '0-0';

  /** A read brought `count` entries, from `first` to `last`. */
  note(first: string, last: string, count: number): void {
    if (this.#reads.length === MAX_READS) {
      const dropped = this.#reads.shift() as Read;
      this.#prunedTo = dropped.last;
    }
    this.#reads.push({ first, last, count });
  }

  /** A trim check found the group at `upTo`: reads up to it are behind every position kept from now on. */
  prune(upTo: string): void {
    let n = 0;
    while (n < this.#reads.length && compareIds((this.#reads[n] as Read).last, upTo) <= 0) n++;
    if (n === 0) return;
    this.#prunedTo = (this.#reads[n - 1] as Read).last;
    this.#reads.splice(0, n);
  }

  /** The group starts over: nothing read before says anything of it. */
  clear(): void {
    this.#reads = [];
    this.#prunedTo = '0-0';
  }

  /**
   * How many entries this instance read after `from` and before `to` (the
   * stream's first entry now; undefined: the stream is empty, all of them);
   * undefined when unknown: reads before `from` were pruned, or a read
   * straddles `to` (how many of it went is not known).
   */
  between(from: string, to: string | undefined): number | undefined {
    if (compareIds(this.#prunedTo, from) > 0) return undefined;
    let n = 0;
    for (const r of this.#reads) {
      if (compareIds(r.last, from) <= 0) continue;
      if (compareIds(r.first, from) <= 0) return undefined;
      if (to === undefined || compareIds(r.last, to) < 0) n += r.count;
      else if (compareIds(r.first, to) < 0) return undefined;
    }
    return n;
  }
}
