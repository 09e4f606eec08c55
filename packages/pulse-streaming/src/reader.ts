import { ClosedError, type PulseError } from './errors.js';
import { Event, type EventMap, type EventOf, type Untyped } from './event.js';
import { sleep } from './internal/backoff.js';
import { monotonicNow } from './internal/clock.js';
import { type Arg, type Connection, checkOpen } from './internal/driver.js';
import { Fanout } from './internal/fanout.js';
import { countPerStream, ReadLoops } from './internal/loops.js';
import { LossReport } from './internal/lossReport.js';
import { OPTION_NAMES } from './internal/optionLists.js';
import { checkOptionNames } from './internal/optionNames.js';
import { PerKey } from './internal/perKey.js';
import { ReaderChecks } from './internal/readerChecks.js';
import { reportFound } from './internal/readerFound.js';
import type { CheckPoint, ReadStream } from './internal/readerLoss.js';
import { readerPosition } from './internal/readerScripts.js';
import { startOf } from './internal/readerStart.js';
import { ReaderSubscriptions } from './internal/readerSubscriptions.js';
import { ReadLoop } from './internal/readLoop.js';
import { type ReadSettings, readSettings } from './internal/readOptions.js';
import { errorText, isReplyError, isRetryable, toPulseError } from './internal/redisErrors.js';
import { eventInit, streamEntries } from './internal/replies.js';
import { addStreamStart } from './internal/start.js';
import { checkSameClient, type StreamHandle } from './internal/streamHandle.js';
import { subscribeSignal } from './internal/validate.js';
import type { Logger } from './logger.js';
import type { AddStreamOptions, ReaderOptions, SubscribeOptions } from './options.js';
import type { Stream } from './stream.js';
import type { Subscription } from './subscription.js';

/** What a reader has done so far: a snapshot, see {@link Reader.counters}. */
export interface ReaderCounters {
  /**
   * Events handed to the subscriptions: put in their buffers, whether taken
   * from there yet or not (events the topic or filter rejected are not
   * counted). Those the last subscription left unread as it left are taken
   * off, and counted again as the next subscription gets them.
   */
  readonly delivered: number;
  /**
   * Events trimmed (by `maxLen`) or deleted after the reader's cursor before
   * it read them. Counted exactly, a moment after the reads that jumped
   * over them (checks run at most a few times a second, in turn over the
   * streams while a full subscription holds the reader back or its reads
   * come back empty: a stream trimmed or deleted down to nothing is counted
   * by a later read's check, one such stream per read in turn, each at most
   * once a second; `close()` checks every stream once more, so the count is
   * complete when it resolves). A stream key
   * deleted or expired, or a Redis restarted from an older snapshot, counts
   * the events ahead of the cursor at the last check, not read since and
   * not in the stream any more: at least that many are gone (a warning says
   * more may be). A Redis gone back past the cursor (a failover to a replica
   * whose clock is behind) moves it back to an entry read before, so that
   * the events added since are delivered.
   */
  readonly lost: number;
}

let readerSeq = 0;

/** Longest wait of `close()`: for the read loops to stop and the last loss checks. */
const FINAL_CHECK_MS = 1000;

/**
 * A stream reader: every reader gets every event (fan-out), with its own cursor.
 * Reading starts with the first `subscribe`.
 */
export class Reader<Events extends EventMap = Untyped> implements AsyncIterable<EventOf<Events>> {
  readonly #settings: ReadSettings;
  readonly #streams = new Map<string, ReadStream>();
  /** addStream and removeStream of one stream, one after another in call order. */
  readonly #perStream = new PerKey();
  readonly #fanout: Fanout<Event>;
  readonly #loops: ReadLoops<Event>;
  readonly #logger: Logger;
  readonly #main: StreamHandle;
  readonly #lossReport: LossReport;
  #lost = 0;
  /** What the subscriptions were handed, and what a leaving one had not taken (see `unsubscribe`). */
  readonly #subs: ReaderSubscriptions;
  readonly #checks: ReaderChecks;
  /** Read groups with a read in flight. */
  readonly #reading = new Set<number>();
  /** Per read group, the streams whose last read came back full: the next read splits maxPolled among them. */
  readonly #busy = new Map<number, number>();
  #closed = false;
  #failure: PulseError | undefined;
  #closing: Promise<void> | undefined;

  private constructor(main: StreamHandle, settings: ReadSettings, first: ReadStream) {
    this.#main = main;
    this.#settings = settings;
    this.#logger = main.logger.child({ reader: ++readerSeq });
    this.#lossReport = new LossReport(main.hasLogger ? this.#logger : undefined, `reader of stream ${main.name}`);
    this.#streams.set(main.key, first);
    this.#fanout = new Fanout<Event>(settings.bufferSize, { onDropped: (items) => this.#subs.dropped(items) });
    this.#subs = new ReaderSubscriptions({
      fanout: this.#fanout,
      logger: this.#logger,
      open: () => !this.#closed && this.#failure === undefined,
      streamNames: () => new Set([...this.#streams.values()].map((st) => st.stream.name)),
    });
    this.#checks = new ReaderChecks({
      streams: this.#streams,
      reading: this.#reading,
      conn: main.driver,
      logger: this.#logger,
      groupOf: (key) => this.#loops.groupOf(key),
      wake: (key) => void this.#loops.add(key).catch(() => {}),
      // A subscription is there and one is full (none there: nothing is read, so nothing is lost).
      heldBack: () => this.#fanout.subs.size > 0 && !this.#fanout.ready(),
      closed: () => this.#closed,
      found: (s, found) => {
        this.#lost += found.lost;
        reportFound(this.#lossReport, s.stream.name, found);
      },
    });
    this.#loops = new ReadLoops<Event>(
      main.driver,
      `pulse:reader:${main.name}`,
      this.#logger,
      (group, conn) =>
        new ReadLoop<Event>({
          conn,
          control: main.driver,
          fanout: this.#fanout,
          logger: this.#logger,
          nextRead: () => {
            const send = this.#nextRead(group);
            return send && { send };
          },
          onReply: (reply) => this.#onReply(reply as ReadResult),
          onError: async (err) => {
            if (isRetryable(err)) {
              this.#checks.afterFault(group);
              return 'retry';
            }
            const what = isReplyError(err, 'WRONGTYPE') ? 'a stream key holds another type' : 'Redis refused the read';
            this.#fail(toPulseError(err, `reader stopped: ${what}`));
            return 'stop';
          },
        }),
      settings.blockMs,
    );
  }

  /** @internal Use `stream.newReader()`. */
  static async create<Events extends EventMap>(stream: Stream<Events>, options: ReaderOptions): Promise<Reader<Events>> {
    checkOptionNames('newReader', options, OPTION_NAMES.newReader);
    const settings = readSettings(options);
    checkOpen(stream.driver, `create a reader of stream ${stream.name}`);
    const reader = new Reader<Events>(stream, settings, await startOf(stream, settings.start));
    await reader.#loops.add(stream.key);
    return reader;
  }

  /**
   * What this reader has delivered and found lost so far, over all its
   * streams (a snapshot: read it again for newer numbers).
   */
  get counters(): ReaderCounters {
    return { delivered: this.#subs.delivered, lost: this.#lost };
  }

  /**
   * A new subscription that receives every event the reader reads from now on,
   * after those the last subscription left unread (see {@link unsubscribe}).
   * Leaving a `for await` loop over it unsubscribes.
   * @throws InvalidArgumentError for options that are not an object or a `signal` that is not an `AbortSignal`.
   * @throws ClosedError after `close()` (its cause is the error that stopped the reader, if one did).
   */
  subscribe(options?: SubscribeOptions): Subscription<EventOf<Events>> {
    const signal = subscribeSignal(options);
    if (this.#closed) throw this.#closedError();
    const sub = this.#fanout.add(signal);
    this.#subs.joined(sub);
    this.#loops.start();
    // Events of a typed stream decode with its codec: their types are the stream's map.
    return sub as unknown as Subscription<EventOf<Events>>;
  }

  /**
   * Ends a subscription's iteration (as leaving a `for await` loop over it, or
   * its signal, does); events waiting in its buffer are dropped with it while
   * another subscription is there that has them too (one that joined after
   * they were read gets them, ahead of its own). When it was the
   * last one, the reader stops reading and nothing is skipped: the events it
   * had buffered, never handed out, are kept and go first to the next
   * subscription, in order, once each; a read that returns after that is
   * dropped, its cursor unmoved, and the next subscription reads its events.
   * `removeStream` drops the kept events of that stream, `close()` all.
   * Idempotent for this reader's own subscriptions.
   * @throws InvalidArgumentError when `subscription` is not one this reader returned
   *   (silently doing nothing would leave the real one reading).
   */
  unsubscribe(subscription: Subscription<EventOf<Events>>): void {
    this.#fanout.unsubscribe(subscription, 'reader');
  }

  /** `for await (const ev of reader)` is `subscribe()`. */
  [Symbol.asyncIterator](): AsyncIterator<EventOf<Events>> {
    return this.subscribe();
  }

  /**
   * Also reads `stream`, from `startAt` (default: the reader's own `startAt`).
   * Does nothing when the stream is already read.
   * @throws InvalidArgumentError for options that are not an object or a bad `startAt`, before any Redis call.
   * @throws ClosedError after `close()`.
   * @throws PulseError when Redis could not be reached for it (on a cluster, also when the read
   *   connection of the stream's hash slot could not open): the stream is not read, and a later
   *   `addStream` of it tries again.
   */
  async addStream(stream: Stream<Events>, options?: AddStreamOptions): Promise<void> {
    const start = addStreamStart(options, this.#settings.start);
    if (this.#closed) throw this.#closedError();
    checkSameClient(this.#main, stream);
    // In call order with removeStream of the same stream: a removal made while the add awaited
    // its start found nothing to remove, and the add then read the stream (outside review AE).
    await this.#perStream.run(stream.key, async () => {
      if (this.#closed) throw this.#closedError();
      if (this.#streams.has(stream.key)) return;
      const state = await startOf(stream, start);
      if (this.#closed) throw this.#closedError();
      if (this.#streams.has(stream.key)) return;
      this.#streams.set(stream.key, state);
      try {
        await this.#loops.add(stream.key);
      } catch (err) {
        // Not read (on a cluster, its slot's read connection could not open): forgotten, so that
        // the caller's retry reads it. Kept, the retry returned at once and the stream stayed unread.
        if (this.#streams.get(stream.key) === state) this.#streams.delete(stream.key);
        throw err;
      }
    });
  }

  /** Stops reading `stream`. Idempotent. Takes effect after an `addStream` of it called before. */
  async removeStream(stream: Stream<Events>): Promise<void> {
    if (this.#closed) return;
    checkSameClient(this.#main, stream);
    await this.#perStream.run(stream.key, async () => {
      if (!this.#streams.delete(stream.key)) return;
      this.#subs.streamRemoved(stream.name);
      await this.#loops.remove(stream.key, (group) => ![...this.#streams.keys()].some((k) => this.#loops.groupOf(k) === group));
    });
  }

  /** Stops reading, ends every subscription and releases the connection. Safe to call many times. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#fanout.endAll();
      this.#subs.clear();
      this.#checks.stop();
      // Once the loops stopped, checks in flight, then the last reads, are
      // checked, so that the counters and the last warning are complete; all
      // within one bound, so that a Redis gone away cannot hold close().
      const bound = new AbortController();
      const stopped = this.#loops.stop().then(() => this.#checks.final());
      // A failure after the bound has nobody to reject: close() resolved.
      stopped.catch(() => {});
      await Promise.race([stopped, sleep(FINAL_CHECK_MS, bound.signal)]);
      bound.abort();
      await this.#lossReport.close();
    })();
    return this.#closing;
  }

  /** True once `close()` was called (or a fatal error stopped the reader). */
  isClosed(): boolean {
    return this.#closed;
  }

  /** `await using reader = ...` closes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #closedError(): ClosedError {
    return new ClosedError('reader is closed', this.#failure ? { cause: this.#failure } : undefined);
  }

  /** An error that retrying cannot fix: ends the subscriptions with it and releases the connections. */
  #fail(err: PulseError): void {
    if (this.#closed) return;
    this.#logger.error({ err: err.message }, 'reader stopped');
    this.#failure = err;
    this.#fanout.endAll(err);
    // Not awaited: this runs inside a read loop, which stop() waits for.
    void this.close();
  }

  #nextRead(group: number): ((conn: Connection) => Promise<ReadResult>) | undefined {
    const keys: string[] = [];
    const ids: string[] = [];
    const states: ReadStream[] = [];
    const rewinds: number[] = [];
    const checks: Array<{ state: ReadStream; point: CheckPoint; cmd: Arg[] }> = [];
    const quiet: ReadStream[] = [];
    const now = monotonicNow();
    // A check goes just before the read, on the same connection: it sees the
    // stream exactly as this reader left it (no read in flight).
    const check = (s: ReadStream): void => {
      const point = s.ledger.begin(now, s.cursor);
      // EVAL, not EVALSHA: a NOSCRIPT retry would land after the read.
      const cmd = ['EVAL', readerPosition.source, 1, s.stream.key, ...s.ledger.checkArgs(point)];
      checks.push({ state: s, point, cmd });
    };
    for (const [key, s] of this.#streams) {
      if (this.#loops.groupOf(key) !== group) continue;
      keys.push(key);
      ids.push(s.cursor);
      states.push(s);
      rewinds.push(s.ledger.rewinds);
      if (s.ledger.due(now)) check(s);
      else quiet.push(s);
    }
    if (keys.length === 0) return undefined;
    // A stream whose reads come back empty is checked too, now and then (see ReaderChecks.quiet).
    const idle = this.#checks.quiet(quiet, now);
    if (idle) check(idle);
    const { maxPolled, blockMs } = this.#settings;
    // COUNT is per stream: split so that one read brings about maxPolled in all (see countPerStream).
    const count = countPerStream(maxPolled, keys.length, this.#busy.get(group));
    const args = ['XREAD', 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids];
    return async (conn) => {
      this.#reading.add(group);
      try {
        const checked = checks.map((c) => this.#checks.withRead(c.state, c.point, conn.send(c.cmd, c.state.stream.key)));
        const reply = await conn.send(args, keys[0]);
        await Promise.all(checked);
        return { states, rewinds, reply, group, count };
      } finally {
        // The loop hands the reply to #onReply before any timer can run.
        this.#reading.delete(group);
      }
    };
  }

  #onReply({ states, rewinds, reply, group, count }: ReadResult): void {
    // The last subscription left (unsubscribe, its signal, close()) while the
    // read was in flight: nobody gets these events, so the cursor stays
    // before them and the next subscription reads them again (the cursor is
    // the last ID handed out, SEMANTICS.md §3.8). The loss check that went
    // with the read stands: it was taken at the cursor, which has not moved.
    if (this.#fanout.subs.size === 0) return;
    const matches = this.#settings.matches;
    let full = 0;
    for (const [key, batch] of streamEntries(reply)) {
      if (batch.length >= count) full++;
      const at = states.findIndex((s) => s.stream.key === key);
      const state = states[at];
      // Removed (and maybe added again with another start) while the read was in flight, or its cursor
      // went back (a check found the stream gone back in time): not this cursor's reply.
      if (!state || this.#streams.get(key) !== state || batch.length === 0 || state.ledger.rewinds !== rewinds[at]) continue;
      state.cursor = (batch[batch.length - 1] as [string, unknown])[0];
      state.ledger.onRead(batch.length, (i) => (batch[i] as [string, unknown])[0]);
      for (const entry of batch) {
        const init = eventInit(state.stream.name, entry, 1, state.stream.codec);
        if (!init.complete) this.#logger.warn({ id: entry[0] }, 'entry without n or p: delivered with defaults');
        const event = new Event(init);
        if (matches) {
          let ok: boolean;
          try {
            ok = matches(event);
          } catch (err) {
            this.#logger.error({ id: entry[0], err: errorText(err) }, 'filter threw: event skipped');
            this.#lossReport.filterThrew(entry[0], errorText(err));
            ok = false;
          }
          if (!ok) continue;
        }
        this.#subs.deliver(event);
      }
    }
    if (full > 0) this.#busy.set(group, full);
    else this.#busy.delete(group);
    this.#checks.arm();
  }
}

/** A read's reply and the cursors it was asked for; the read group, and the COUNT it asked of each stream. */
interface ReadResult {
  readonly states: readonly ReadStream[];
  /** Each stream's `ledger.rewinds` when the read was sent. */
  readonly rewinds: readonly number[];
  readonly reply: unknown;
  readonly group: number;
  readonly count: number;
}
