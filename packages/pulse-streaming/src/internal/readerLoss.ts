/**
 * How a reader counts the entries it never got: trimmed by `maxLen` or
 * deleted with `XDEL` after its cursor before it read them. `XREAD` jumps
 * over them without a word, so the reader keeps a ledger and checks it
 * against the stream's own counters (Redis 7.0 `XINFO STREAM`):
 *
 *   every entry added after the reader's start, or ahead of it when it
 *   started, is by now read by it, still ahead of its cursor, or lost.
 *
 * With `added` the stream's `entries-added`, `ahead` the entries after the
 * cursor now, and `base` the entries that were never the reader's (added
 * before its start and not ahead of it then):
 *
 *   lost = added - base - read - ahead
 *
 * This total only grows when an entry nobody read yet is deleted (an entry
 * deleted after the cursor will never be read: it is lost as soon as it is
 * gone), so it is exact whenever `ahead` is known. `ahead` is free when the
 * cursor is at the stream's end (0) or before its first entry (all of them:
 * trimming went past the cursor); and the total has not changed when the
 * stream's deleted count (`entries-added - length`) is the same as at the
 * last exact check, or when nothing after that check's cursor was deleted
 * since. Otherwise the script counts the entries on the shorter side of the
 * cursor, up to a cap, or says it does not know yet (a later check will).
 *
 * The start is read in the same script, so the base is exact: 'newest'
 * starts at the stream's last-generated ID (`base = added`), 'oldest' before
 * its first entry (`base = added - length`); a start inside a long stream
 * counts what is ahead of it in pages (readerStart.ts). A start past the
 * stream's last generated ID (a Date ahead of Redis' clock, a saved cursor)
 * leaves the base to the first exact check: entries up to the start may
 * still be added, and are not the reader's. On a missing key, a start before
 * Redis' clock has base 0: entries added later get later IDs (unless given
 * explicit older ones), all the reader's, as with 'oldest'.
 *
 * A stream key deleted and created again (destroy, TTL), or a Redis that
 * went back in time (restarted from an older snapshot), restarts or lowers
 * `entries-added` (or max-deleted-entry-id), or, refilled past them, has a
 * first entry newer than the last ID generated at the last check (or none)
 * with fewer deleted since than there were entries then, one more when an
 * entry after that ID was deleted (`sameKey`): the entries ahead
 * of the cursor at the last check that told (every exact one: one that
 * found nothing lost knows them from the count), less the reads since that
 * may be among them and those still there (a Redis gone back in time keeps
 * the entries of its snapshot, read later), are counted lost (at least that
 * many: entries added since are unknown, and said so), and counting goes on
 * from the new key. A cursor this reader read that is now past the last
 * generated ID (gone back in time onto a clock that is behind: new entries
 * get IDs before it, which `XREAD` would jump over) goes back to an entry it
 * read before the fault (readerMarks.ts). A cursor from a start past the end
 * (a Date ahead of Redis' clock) stays, its base unknown again, as at the
 * start (entries up to it are not the reader's). A stream not read is checked too:
 * held back by a full subscription (the reader's timer), or when its reads
 * come back empty (a stream trimmed or deleted down to nothing: a check
 * goes with the next read, ReaderChecks.quiet): one at a time, the longest
 * unchecked first, each at most once a second (`IDLE_CHECK_MS`), at most one
 * every `CHECK_INTERVAL_MS` in all; none once no subscription is left, as
 * nothing is read then, until `close()` checks every stream once more.
 *
 * Checks are rare (at most one per stream every `CHECK_INTERVAL_MS` after
 * reads, a few a second in all without): a reader that loses nothing pays
 * one small script call a few times a second, not one per read.
 */

import type { Arg } from './driver.js';
import { compareIds, countUpTo } from './ids.js';
import { ReadMarks } from './readerMarks.js';
import { type Counters, sameKey } from './readerSameKey.js';
import { COUNT_CAP, type Kept, parseCheckReply } from './readerScripts.js';
import type { StreamHandle } from './streamHandle.js';

/** Shortest time between two checks of one stream. */
export const CHECK_INTERVAL_MS = 200;
/** Shortest time between two checks of a stream without reads (held back by a full subscription). */
export const IDLE_CHECK_MS = 1000;
/**
 * Checks copy the stream's first and last entries (`XINFO STREAM`): with
 * big entries they cost more, and are spaced out so that they take at most
 * about 1% of the time (a 3 ms check of 1 MB entries: one every 300 ms).
 */
const CHECK_TIME_SHARE = 100;
/** The longest time between two checks, however slow they were. */
const MAX_CHECK_GAP_MS = 5000;

/** A snapshot of a stream's reading taken when a check is sent: what the check's answer is about. */
export interface CheckPoint {
  readonly cursor: string;
  readonly read: number;
}

/**
 * What a check found: `lost` more entries known lost (0 or more), and what
 * to tell besides: the key is gone (`nokey`, first time only), it was
 * created again or went back in time (`recreated`: `lost` is a lower
 * bound), entries deleted between an unknown start and the first exact
 * check may be lost (`uncertain`), or this Redis cannot tell (`unsupported`).
 * `retry`: not known yet, checked again after the next reads or the interval.
 */
export interface Found {
  readonly lost: number;
  readonly say?: 'nokey' | 'recreated' | 'uncertain' | 'unsupported';
  readonly retry?: boolean;
  /**
   * The stream went back in time past the cursor, an entry this reader read
   * (see readerMarks.ts): the cursor goes back to this ID, so that entries
   * added since, with IDs before the old cursor, are read.
   */
  readonly rewind?: string;
}

/** How the ledger starts (see `startOf`). */
export interface LedgerStart {
  /** Entries never the reader's; undefined when unknown until the first exact check. */
  readonly base: number | undefined;
  readonly cursor: string;
  /** The key was missing at the start: a check that finds it missing has nothing new to tell. */
  readonly missing?: boolean;
  /** The stream's deleted count, entries-added, max-deleted-entry-id and last generated ID at the start. */
  readonly deleted?: number;
  readonly added?: number;
  readonly maxDeleted?: string;
  readonly lastGen?: string;
}

/**
 * One stream's ledger in a reader. The reader counts what it reads; checks
 * (see `readerPosition`) turn that into the exact number lost.
 */
export class LossLedger {
  /** Entries never this reader's (see the file comment); undefined until a check can tell. */
  #base: number | undefined;
  /**
   * While the base is unknown: the start and the deleted count then. The
   * first exact check takes the base as if nothing was lost before it: true
   * when nothing was deleted since the start, or nothing after the start.
   */
  #unknownStart: { readonly id: string; readonly deleted: number } | undefined;
  /** The stream's counters at the last answer (see `#sameKey`); undefined: none yet. */
  #last: Counters | undefined;
  /**
   * Entries ahead of the cursor at the last answer that told, the last ID
   * generated then ('' unknown), and the entries read since with IDs up to
   * it: only those can be among the entries that were ahead (an entry of a
   * key created again since has a later ID, unless given an older one).
   */
  #aheadAt: { readonly ahead: number; readonly lastGen: string; within: number } | undefined;
  /** Entries read from this stream (delivered or filtered out). */
  read = 0;
  /** Entries found lost so far. */
  lost = 0;
  /** The cursor of the last exact check: nothing deleted after it since means nothing more lost. */
  exactAt = '';
  /** The stream's deleted count (entries-added - length) at the last exact check: unchanged, nothing more lost. */
  deletedAtExact: number | undefined;
  /** Reads since the last check. */
  dirty = false;
  /** A check is in flight: one at a time, so that answers apply in order. */
  checking = false;
  /** Batches read so far: an answer is stale when a batch arrived between its question and it. */
  batches = 0;
  /** When the last check was sent (ms). */
  lastCheck = 0;
  /** The time between two checks: CHECK_INTERVAL_MS, or longer after slow checks. */
  gap = CHECK_INTERVAL_MS;
  #sentAt = 0;
  /** The stream key was missing at the last check: told once. */
  keyGone = false;
  /** Checks are impossible (Redis before 7.0): told once, then never tried. */
  disabled = false;
  /** Times the cursor went back (`Found.rewind`): a read sent before one is not this cursor's. */
  rewinds = 0;
  /** The last entry read ('' none yet): a cursor that is one was at most the last generated ID then. */
  #readTo = '';
  readonly #marks = new ReadMarks();

  constructor(start: LedgerStart) {
    const { base, cursor, deleted, added, maxDeleted } = start;
    const lastGen = start.lastGen ?? '';
    this.#base = base;
    this.keyGone = start.missing === true;
    if (added !== undefined) this.#last = { added, deleted: deleted ?? 0, maxDeleted: maxDeleted ?? '0-0', lastGen };
    // At the start nothing is lost yet, so a start with a known base is an exact point.
    if (base !== undefined) {
      this.exactAt = cursor;
      this.deletedAtExact = deleted;
      if (added !== undefined) this.#aheadAt = { ahead: added - base, lastGen, within: 0 };
    } else if (deleted !== undefined) {
      this.#unknownStart = { id: cursor, deleted };
    }
  }

  /** The arguments of a check about `point` (after the script and its key). */
  checkArgs(point: CheckPoint): Arg[] {
    const args: Arg[] = ['check', point.cursor, COUNT_CAP, this.exactAt, this.deletedAtExact ?? ''];
    const read = this.#readTo !== '' && this.#readTo === point.cursor;
    // What the script needs to tell a stream gone back in time (see readerScripts.ts).
    if (!read && (!this.#aheadAt || !this.#last)) return args;
    const last = this.#last;
    args.push(this.#aheadAt?.lastGen ?? '', last?.added ?? '', last?.maxDeleted ?? '', read ? '1' : '');
    if (read) args.push(...this.#marks.ids());
    return args;
  }

  /** Records a batch of `n` entries read; `idOf(i)`: the ID of its i-th entry, in order (unknown: all count as seen ahead). */
  onRead(n: number, idOf?: (i: number) => string): void {
    if (n === 0) return;
    const at = this.#aheadAt;
    if (at) at.within += idOf === undefined || at.lastGen === '' ? n : countUpTo(n, idOf, at.lastGen);
    this.read += n;
    if (idOf) {
      this.#readTo = idOf(n - 1);
      this.#marks.note(this.#readTo, performance.now());
    } else this.#readTo = '';
    this.batches++;
    this.dirty = true;
  }

  /** True when a check should be sent now. */
  due(now: number): boolean {
    return this.dirty && !this.checking && !this.disabled && now - this.lastCheck >= this.gap;
  }

  /**
   * True when a check without reads may be sent now (while held back, or
   * with a read that follows an empty one: see the file comment): a stream
   * not read may still be deleted, expire, go back in time or get entries
   * trimmed, and nothing would check it otherwise.
   */
  idleDue(now: number): boolean {
    return !this.dirty && !this.checking && !this.disabled && now - this.lastCheck >= Math.max(IDLE_CHECK_MS, this.gap);
  }

  /**
   * What the reader's check timer does for this stream's reads at `now`:
   * check on the user's client while no read is in flight (`check`), or
   * have the read in flight cut short, after an interval left to it, so
   * that the next one carries the check (`cut`); `again`: look again after
   * the interval.
   */
  onTimer(now: number, reading: boolean): { readonly act?: 'check' | 'cut'; readonly again: boolean } {
    if (!this.due(now)) return { again: this.dirty };
    if (!reading) return { act: 'check', again: false };
    return now - this.lastCheck >= 2 * this.gap ? { act: 'cut', again: true } : { again: true };
  }

  /** Marks a check sent at `now` about `point`. */
  begin(now: number, cursor: string): CheckPoint {
    this.checking = true;
    this.dirty = false;
    this.lastCheck = now;
    this.#sentAt = performance.now();
    return { cursor, read: this.read };
  }

  /** Applies a check's answer about `point`: what it found (see {@link Found}). */
  apply(reply: unknown, point: CheckPoint): Found {
    this.#done();
    const r = parseCheckReply(reply);
    if (r.status === 'back') {
      // Gone back in time past the cursor: whatever the counters say, read on from before the fault.
      this.keyGone = false;
      const found = this.#recreated(point, r, undefined, r.kept);
      this.#readTo = r.to;
      this.#marks.rewind(r.to);
      this.rewinds++;
      return { ...found, rewind: r.to };
    }
    if (r.status === 'ok' || r.status === 'same') {
      this.keyGone = false;
      const ahead = r.status === 'ok' ? r.ahead : undefined;
      if (this.#last && !sameKey(this.#last, r)) return this.#recreated(point, r, ahead, r.kept);
      this.#last = r;
      if (ahead === undefined) {
        // 'same': nothing lost since the last exact check, so what is ahead
        // follows from the count: the next key gone or gone back in time
        // counts from it (README: what was ahead at the last check).
        this.exactAt = point.cursor;
        this.deletedAtExact = r.deleted;
        if (this.#base !== undefined && Number.isFinite(r.added)) {
          this.#aheadAt = { ahead: r.added - this.#base - point.read - this.lost, lastGen: r.lastGen, within: 0 };
        }
        return { lost: 0 };
      }
      let say: Found['say'];
      // A start still past the stream's last generated ID (a Date ahead of Redis' clock): entries up
      // to it may yet be added, not the reader's. Checks without reads come that early: the base waits.
      if (this.#base === undefined && r.lastGen !== '' && compareIds(point.cursor, r.lastGen) > 0) return { lost: 0 };
      if (this.#base === undefined) {
        // The first exact point of a reader whose start had no known base:
        // nothing lost before it is known, which is exact when nothing after
        // the start was deleted since (max-deleted-entry-id only grows).
        this.#base = r.added - point.read - ahead - this.lost;
        const start = this.#unknownStart;
        if (start && r.deleted !== start.deleted && compareIds(r.maxDeleted, start.id) > 0) say = 'uncertain';
        this.#unknownStart = undefined;
      }
      const total = r.added - this.#base - point.read - ahead;
      if (total < this.lost) {
        // Fewer than already counted though the counters did not go back: a
        // key created again that caught up with the old one's counters.
        return this.#recreated(point, r, ahead, r.kept);
      }
      this.exactAt = point.cursor;
      this.deletedAtExact = r.deleted;
      this.#aheadAt = { ahead, lastGen: r.lastGen, within: 0 };
      const more = total - this.lost;
      this.lost = total;
      return say ? { lost: more, say } : { lost: more };
    }
    this.dirty = true;
    if (r.status === 'nokey') {
      const first = !this.keyGone;
      this.keyGone = true;
      this.dirty = false;
      // What was ahead at the last check and is not read is gone with the key.
      const gone = first ? this.#unreadAhead() : 0;
      this.lost += gone;
      // A start past the stream's end (see 'ok' above) stays so: entries up to it may yet be added.
      const future = this.#base === undefined && this.#pastEnd(point.cursor);
      // Else a new key counts its entries from 0: the ledger goes on from there.
      this.#base = future ? undefined : -point.read - this.lost;
      this.#reset({ added: 0, deleted: 0, maxDeleted: '0-0', lastGen: '' }, 0);
      if (future) this.#unknownStart = { id: point.cursor, deleted: 0 };
      return first ? { lost: gone, say: 'nokey' } : { lost: 0 };
    }
    if (r.status === 'unsupported') {
      this.disabled = true;
      return { lost: 0, say: 'unsupported' };
    }
    return { lost: 0, retry: true };
  }

  /** A check failed (connection...): try again later. */
  failed(): void {
    this.#done();
    this.dirty = true;
  }

  /**
   * The key was deleted and created again, or Redis went back in time: the
   * entries ahead at the last check that were not read since and are not
   * there any more (`kept`: still there after going back in time; too many
   * to count, none is counted) are gone (at least: more may have been added
   * before it went). Counting goes on from the key as it is.
   */
  #recreated(point: CheckPoint, now: Counters, ahead: number | undefined, kept: Kept): Found {
    const gone = kept === 'many' ? 0 : Math.max(0, this.#unreadAhead() - (kept ?? 0));
    this.lost += gone;
    this.#reset(now, ahead);
    // A cursor now past the last generated ID that it did not read (one it read went back: 'back') is
    // a start ahead of Redis' clock again: entries up to it, which a Redis gone back in time still
    // adds, are not the reader's. A base taken now counted them lost at the next check.
    const future = ahead !== undefined && now.lastGen !== '' && compareIds(point.cursor, now.lastGen) > 0;
    // Without `ahead` ('same', 'back') the next check takes the base afresh, as after an unknown start.
    this.#base = ahead === undefined || future ? undefined : now.added - point.read - ahead - this.lost;
    if (future) this.#unknownStart = { id: point.cursor, deleted: now.deleted };
    else if (ahead !== undefined) {
      this.exactAt = point.cursor;
      this.deletedAtExact = now.deleted;
    }
    return { lost: gone, say: 'recreated' };
  }

  /** `cursor` is past the last ID generated at the last answer (none known: a missing key). */
  #pastEnd(cursor: string): boolean {
    const lastGen = this.#last?.lastGen ?? '';
    return lastGen === '' || compareIds(cursor, lastGen) > 0;
  }

  /** Entries ahead of the cursor at the last answer that told, less every read since that may be one of them: unread for sure. */
  #unreadAhead(): number {
    const at = this.#aheadAt;
    return at === undefined ? 0 : Math.max(0, at.ahead - at.within);
  }

  #reset(now: Counters, ahead: number | undefined): void {
    this.#unknownStart = undefined;
    this.#last = now;
    this.#aheadAt = ahead === undefined ? undefined : { ahead, lastGen: now.lastGen, within: 0 };
    this.exactAt = '';
    this.deletedAtExact = undefined;
  }

  #done(): void {
    this.checking = false;
    const spaced = CHECK_TIME_SHARE * (performance.now() - this.#sentAt);
    // Bounded: a stalled event loop must not put losses off for long.
    this.gap = Math.min(MAX_CHECK_GAP_MS, Math.max(CHECK_INTERVAL_MS, spaced));
  }
}

/** One stream of a reader. */
export interface ReadStream {
  readonly stream: StreamHandle;
  /** ID of the last entry read (or the resolved start): the cursor never moves back to `$`. */
  cursor: string;
  /** What was read from it and found lost. */
  readonly ledger: LossLedger;
}
