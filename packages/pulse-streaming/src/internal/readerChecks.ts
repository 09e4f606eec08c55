/**
 * When a reader checks its streams for losses (readerLoss.ts) outside its
 * reads: the check timer, checks on the user's client, after a fault, and
 * the last ones at close. Checks that go with a read are sent by the reader
 * itself (on the read's connection) and applied here.
 */

import type { Logger } from '../logger.js';
import { monotonicNow } from './clock.js';
import type { Connection } from './driver.js';
import { evalScript } from './driver.js';
import { CHECK_INTERVAL_MS, type CheckPoint, type Found, type ReadStream } from './readerLoss.js';
import { readerPosition } from './readerScripts.js';
import { errorText } from './redisErrors.js';

/** What the checks need of their reader. */
export interface ChecksHost {
  readonly streams: ReadonlyMap<string, ReadStream>;
  /** Read groups with a read in flight. */
  readonly reading: ReadonlySet<number>;
  readonly conn: Connection;
  readonly logger: Logger;
  groupOf(key: string): number;
  /** Wakes the read loop of `key`: a read in flight is cut short, the next one is sent. */
  wake(key: string): void;
  /** A subscription is there and one is full: the loop waits, reading nothing. */
  heldBack(): boolean;
  closed(): boolean;
  /** A check of `s` found `found`: the reader counts and tells it. */
  found(s: ReadStream, found: Found): void;
}

/** A reader's loss checks outside its reads (see the file comment). */
export class ReaderChecks {
  readonly #host: ChecksHost;
  #timer: NodeJS.Timeout | undefined;
  /** Checks in flight: `close()` waits for them (bounded), so that its counters are complete. */
  readonly #inFlight = new Set<Promise<void>>();
  /** When the last check of a stream without reads was sent (see `quiet`): one per CHECK_INTERVAL_MS in all. */
  #lastQuiet = 0;

  constructor(host: ChecksHost) {
    this.#host = host;
  }

  /** Arms the check timer unless it is armed. */
  arm(): void {
    if (this.#timer === undefined) this.#arm();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  /**
   * Reads since the last check are checked with the next read. When no read
   * comes soon, this timer checks them: on the user's client while no read
   * is in flight (the loop waits for a full subscription), else by waking
   * the blocked read so that the next one carries the check. A check on
   * another connection during a read could count an entry of the read's
   * reply, deleted right after it was read, as lost. Held back (below), it
   * checks one stream per tick without reads, the longest unchecked first:
   * a few a second in all, however many streams (`LossLedger.idleDue`).
   */
  #arm(): void {
    const host = this.#host;
    if (host.closed()) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = monotonicNow();
      const held = host.heldBack();
      let pending = held;
      let idle: ReadStream | undefined;
      for (const s of host.streams.values()) {
        const reading = host.reading.has(host.groupOf(s.stream.key));
        const { act, again } = s.ledger.onTimer(now, reading);
        pending ||= again;
        if (act === 'check') void this.#checkNow(s, now);
        // The read in flight had one more interval to carry the check: it is cut short.
        else if (act === 'cut') host.wake(s.stream.key);
        else if (held && !reading && s.ledger.idleDue(now) && (!idle || s.ledger.lastCheck < idle.ledger.lastCheck)) idle = s;
      }
      if (idle) {
        this.#lastQuiet = now;
        void this.#checkNow(idle, now);
      }
      if (pending) this.#arm();
    }, CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  /**
   * Which of `candidates` (streams of the read about to be sent, no check
   * due after reads) gets a check with that read, if any: a stream whose
   * reads come back empty is never `dirty`, and its entries may still go
   * before it read them (trimmed to nothing, all deleted, the key deleted):
   * without this no check would ever count them (outside review AK, defect
   * 2). The longest unchecked first, each at most once per `IDLE_CHECK_MS`
   * (`LossLedger.idleDue`), one per `CHECK_INTERVAL_MS` in all, so that a
   * caught-up reader over many streams pays at most one small script per
   * read (a blocked read returns every `blockMs`, 5 s by default).
   */
  quiet(candidates: readonly ReadStream[], now: number): ReadStream | undefined {
    if (now - this.#lastQuiet < CHECK_INTERVAL_MS) return undefined;
    let pick: ReadStream | undefined;
    for (const s of candidates) {
      if (s.ledger.idleDue(now) && (!pick || s.ledger.lastCheck < pick.ledger.lastCheck)) pick = s;
    }
    if (pick) this.#lastQuiet = now;
    return pick;
  }

  /** A check sent with a read (on its connection): applied when it answers. */
  withRead(s: ReadStream, point: CheckPoint, answer: Promise<unknown>): Promise<void> {
    return this.#track(
      answer.then(
        (r) => this.#apply(s, point, r),
        (err: unknown) => this.#failed(s, err),
      ),
    );
  }

  /**
   * A read failed (the connection, a restart, a failover): the stream may
   * have gone back in time meanwhile (a Redis restarted from an older
   * snapshot), and a reader whose cursor is now past its end reads nothing,
   * so nothing would check it: each stream of the group is checked soon.
   */
  afterFault(group: number): void {
    for (const [key, s] of this.#host.streams) {
      if (this.#host.groupOf(key) === group && !s.ledger.disabled) s.ledger.dirty = true;
    }
    this.arm();
  }

  /**
   * Waits for the checks in flight, then checks every stream once more (the
   * read loops stopped: nothing is in flight), so that the counters are
   * complete when `close()` resolves: also a stream not read since its last
   * check may have lost entries since (emptied by `XTRIM MAXLEN 0`, deleted),
   * or never been checked (no subscription, held back).
   */
  async final(): Promise<void> {
    await Promise.all(this.#inFlight);
    const last = [...this.#host.streams.values()].filter((s) => !s.ledger.checking && !s.ledger.disabled);
    await Promise.all(last.map((s) => this.#checkNow(s, monotonicNow())));
  }

  #checkNow = (s: ReadStream, now: number): Promise<void> => this.#track(this.#checkOnClient(s, now));

  /** Keeps `check` (which never rejects) in flight until it settles: `close()` waits for it. */
  #track(check: Promise<void>): Promise<void> {
    this.#inFlight.add(check);
    void check.finally(() => this.#inFlight.delete(check));
    return check;
  }

  async #checkOnClient(s: ReadStream, now: number): Promise<void> {
    const point = s.ledger.begin(now, s.cursor);
    const batches = s.ledger.batches;
    let reply: unknown;
    try {
      reply = await evalScript(this.#host.conn, readerPosition, [s.stream.key], s.ledger.checkArgs(point));
    } catch (err) {
      this.#failed(s, err);
      return;
    }
    // A batch that arrived meanwhile may have been read before the check ran:
    // its entries, if deleted since, would count as lost. Ask again.
    if (s.ledger.batches !== batches) {
      s.ledger.failed();
      this.arm();
      return;
    }
    this.#apply(s, point, reply);
  }

  #apply(s: ReadStream, point: CheckPoint, reply: unknown): void {
    const found = s.ledger.apply(reply, point);
    // Removed (and maybe added again) while the check was in flight: its losses are not this reader's any more.
    if (this.#host.streams.get(s.stream.key) !== s) return;
    if (found.rewind !== undefined) {
      s.cursor = found.rewind;
      // The read in flight waits after the old cursor: the next one reads from the new one.
      this.#host.wake(s.stream.key);
    }
    this.#host.found(s, found);
    if (found.retry || this.#host.heldBack()) this.arm();
  }

  #failed(s: ReadStream, err: unknown): void {
    s.ledger.failed();
    this.#host.logger.debug({ stream: s.stream.name, err: errorText(err) }, 'loss check failed: trying again later');
    this.arm();
  }
}
