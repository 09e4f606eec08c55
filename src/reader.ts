import { ClosedError, InvalidArgumentError, type PulseError } from './errors.js';
import type { Event } from './event.js';
import type { Connection } from './internal/driver.js';
import { ReadLoops } from './internal/loops.js';
import { ReadLoop } from './internal/readLoop.js';
import { type ReadSettings, readSettings } from './internal/readOptions.js';
import { errorText, isReplyError, toPulseError } from './internal/redisErrors.js';
import { entries, readerEvent, streamEntries } from './internal/replies.js';
import { parseStart, type ResolvedStart } from './internal/start.js';
import type { Logger } from './logger.js';
import type { AddStreamOptions, ReaderOptions, SubscribeOptions } from './options.js';
import type { Stream } from './stream.js';
import { Fanout, type Subscription } from './subscription.js';

interface ReadStream {
  readonly stream: Stream;
  /** ID of the last entry delivered (or the resolved start): the cursor never moves back to `$`. */
  cursor: string;
}

/** The last entry's ID now, so that nothing added after it is missed; `0-0` for an empty stream. */
export async function lastId(stream: Stream): Promise<string> {
  try {
    const last = entries(await stream.driver.send(['XREVRANGE', stream.key, '+', '-', 'COUNT', 1], stream.key));
    return last[0]?.[0] ?? '0-0';
  } catch (err) {
    throw toPulseError(err, `read last entry of stream ${stream.name}`);
  }
}

async function cursorFor(stream: Stream, start: ResolvedStart): Promise<string> {
  return start.kind === 'newest' ? lastId(stream) : start.id;
}

let readerSeq = 0;

/**
 * A stream reader: every reader gets every event (fan-out), with its own cursor.
 * Reading starts with the first `subscribe`.
 */
export class Reader implements AsyncIterable<Event> {
  readonly #settings: ReadSettings;
  readonly #streams = new Map<string, ReadStream>();
  readonly #fanout: Fanout<Event>;
  readonly #loops: ReadLoops<Event>;
  readonly #logger: Logger;
  readonly #main: Stream;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(main: Stream, settings: ReadSettings, cursor: string) {
    this.#main = main;
    this.#settings = settings;
    this.#logger = main.logger.child({ reader: ++readerSeq });
    this.#streams.set(main.key, { stream: main, cursor });
    this.#fanout = new Fanout<Event>(settings.bufferSize);
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
          nextRead: () => this.#nextRead(group),
          onReply: (reply) => this.#onReply(reply),
          onError: async (err) => {
            if (isReplyError(err, 'WRONGTYPE')) {
              this.#fail(toPulseError(err, 'reader stopped: a stream key holds another type'));
              return 'stop';
            }
            return 'retry';
          },
        }),
    );
  }

  /** @internal Use `stream.newReader()`. */
  static async create(stream: Stream, options: ReaderOptions): Promise<Reader> {
    const settings = readSettings(options);
    const cursor = await cursorFor(stream, settings.start);
    const reader = new Reader(stream, settings, cursor);
    await reader.#loops.add(stream.key);
    return reader;
  }

  /**
   * A new subscription that receives every event the reader reads from now on.
   * Leaving a `for await` loop over it unsubscribes.
   * @throws ClosedError after `close()`.
   */
  subscribe(options?: SubscribeOptions): Subscription<Event> {
    if (this.#closed) throw new ClosedError('reader is closed');
    const sub = this.#fanout.add(options?.signal);
    this.#loops.start();
    return sub;
  }

  /** Ends a subscription's iteration. */
  unsubscribe(subscription: Subscription<Event>): void {
    this.#fanout.remove(subscription);
  }

  /** `for await (const ev of reader)` is `subscribe()`. */
  [Symbol.asyncIterator](): AsyncIterator<Event> {
    return this.subscribe();
  }

  /**
   * Also reads `stream`, from `startAt` (default: the reader's own `startAt`).
   * Does nothing when the stream is already read.
   * @throws ClosedError after `close()`.
   */
  async addStream(stream: Stream, options?: AddStreamOptions): Promise<void> {
    if (this.#closed) throw new ClosedError('reader is closed');
    checkSameClient(this.#main, stream);
    const start = options?.startAt === undefined ? this.#settings.start : parseStart('startAt', options.startAt);
    if (this.#streams.has(stream.key)) return;
    const cursor = await cursorFor(stream, start);
    if (this.#closed) throw new ClosedError('reader is closed');
    if (this.#streams.has(stream.key)) return;
    this.#streams.set(stream.key, { stream, cursor });
    await this.#loops.add(stream.key);
  }

  /** Stops reading `stream`. Idempotent. */
  async removeStream(stream: Stream): Promise<void> {
    if (this.#closed) return;
    checkSameClient(this.#main, stream);
    if (!this.#streams.delete(stream.key)) return;
    await this.#loops.remove(stream.key, (group) => ![...this.#streams.keys()].some((k) => this.#loops.groupOf(k) === group));
  }

  /** Stops reading, ends every subscription and releases the connection. Safe to call many times. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#fanout.endAll();
      await this.#loops.stop();
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

  #fail(err: PulseError): void {
    this.#logger.error({ err: err.message }, 'reader stopped');
    this.#closed = true;
    this.#fanout.endAll(err);
  }

  #nextRead(group: number): ((conn: Connection) => Promise<unknown>) | undefined {
    const keys: string[] = [];
    const ids: string[] = [];
    for (const [key, s] of this.#streams) {
      if (this.#loops.groupOf(key) !== group) continue;
      keys.push(key);
      ids.push(s.cursor);
    }
    if (keys.length === 0) return undefined;
    const { maxPolled, blockMs } = this.#settings;
    const args = ['XREAD', 'COUNT', maxPolled, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids];
    return (conn) => conn.send(args, keys[0]);
  }

  #onReply(reply: unknown): void {
    const matches = this.#settings.matches;
    for (const [key, batch] of streamEntries(reply)) {
      const state = this.#streams.get(key);
      if (!state) continue;
      for (const entry of batch) {
        state.cursor = entry[0];
        const { event, complete } = readerEvent(state.stream.name, entry);
        if (!complete) this.#logger.warn({ id: entry[0] }, 'entry without n or p: delivered with defaults');
        if (matches) {
          let ok: boolean;
          try {
            ok = matches(event);
          } catch (err) {
            this.#logger.error({ id: entry[0], err: errorText(err) }, 'filter threw: event skipped');
            ok = false;
          }
          if (!ok) continue;
        }
        this.#fanout.deliver(event);
      }
    }
  }
}

/** @internal Streams read together must use the same client (one blocking connection reads them all). */
export function checkSameClient(main: Stream, other: Stream): void {
  if (typeof other !== 'object' || other === null || typeof (other as Partial<Stream>).key !== 'string') {
    throw new InvalidArgumentError('addStream/removeStream take a Stream');
  }
  if (other.driver.kind !== main.driver.kind) {
    throw new InvalidArgumentError('addStream: the stream must use the same kind of Redis client as the reader or sink');
  }
}
