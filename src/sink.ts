import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ClosedError, PulseError } from './errors.js';
import { type Event, type EventOwner, SinkEvent } from './event.js';
import type { Outcome } from './internal/batcher.js';
import { type Arg, type Connection, evalScript, type OwnedConnection } from './internal/driver.js';
import { compareIds } from './internal/ids.js';
import { sinkKeys, sinkRegistryKey, streamKey, streamNameOf } from './internal/keys.js';
import { ReadLoops } from './internal/loops.js';
import { runProcess } from './internal/process.js';
import { ReadLoop } from './internal/readLoop.js';
import { errorText, isReplyError, toPulseError } from './internal/redisErrors.js';
import { eventInit, type RawEntry, str, streamEntries } from './internal/replies.js';
import { checkTrimmed, createGroup, leave, recreateGroup, touch } from './internal/scripts.js';
import { type MaintenanceHost, SinkMaintenance } from './internal/sinkMaintenance.js';
import { type SinkCounters, type SinkSettings, type SinkStream, sinkSettings } from './internal/sinkState.js';
import { parseStart, type ResolvedStart } from './internal/start.js';
import { checkInt, checkName } from './internal/validate.js';
import type { Logger } from './logger.js';
import type { AddStreamOptions, NackOptions, ProcessOptions, SinkOptions, SubscribeOptions } from './options.js';
import { checkSameClient } from './reader.js';
import type { Stream } from './stream.js';
import { Fanout, type Subscription } from './subscription.js';

export type { SinkCounters };

function consumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Longest wait of each step of `close()` on an unresponsive Redis. */
const CLOSE_STEP_MS = 2000;

/**
 * Most entries the trim check copies into Lua to verify a blocking read
 * (there are usually none: the read took everything there was).
 */
const VERIFY_MAX_ENTRIES = 256;

/** Resolves to `p`, or to undefined after `ms`, so shutdown never hangs on a stopped Redis. */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

/**
 * A sink: one consumer of a Redis consumer group. All sink instances with the
 * same name share one cursor and split the events; an event left unacked for
 * the grace period is redelivered to a live instance.
 */
export class Sink implements AsyncIterable<SinkEvent>, EventOwner {
  /** The sink name (the consumer group). */
  readonly name: string;
  /** This instance's unique Redis consumer name. */
  readonly consumerName: string;
  readonly #settings: SinkSettings;
  readonly #main: Stream;
  readonly #streams = new Map<string, SinkStream>();
  readonly #fanout: Fanout<SinkEvent>;
  readonly #loops: ReadLoops<SinkEvent>;
  readonly #control: OwnedConnection;
  readonly #logger: Logger;
  readonly #counters: SinkCounters = { delivered: 0, redelivered: 0, acked: 0, deadLettered: 0, lost: 0, filtered: 0 };
  #maintenance: SinkMaintenance | undefined;
  #pendingAcks = new Map<string, string[]>();
  #ackFlush: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The last read found nothing: the next one blocks until something new arrives. */
  #idle = new Set<number>();
  /** Reconnects of this sink's connections as of the last trim check. */
  #reconnects = 0;

  private constructor(main: Stream, name: string, consumer: string, settings: SinkSettings, control: OwnedConnection) {
    this.name = name;
    this.consumerName = consumer;
    this.#main = main;
    this.#settings = settings;
    this.#control = control;
    this.#logger = main.logger.child({ sink: name, consumer });
    this.#streams.set(main.key, this.#sinkStream(main));
    this.#fanout = new Fanout<SinkEvent>(settings.bufferSize);
    this.#loops = new ReadLoops<SinkEvent>(
      main.driver,
      `pulse:sink:${name}:read`,
      this.#logger,
      (group, conn) =>
        new ReadLoop<SinkEvent>({
          conn,
          control,
          fanout: this.#fanout,
          logger: this.#logger,
          nextRead: () => this.#nextRead(group),
          onReply: (reply) => this.#onReply(group, reply),
          onError: (err) => this.#onReadError(err),
        }),
    );
  }

  /** @internal Use `stream.newSink()`. */
  static async create(stream: Stream, name: string, options: SinkOptions): Promise<Sink> {
    checkName('sink', name);
    const settings = sinkSettings(options);
    const consumer = consumerName();
    await ensureGroup(stream, name, settings.start, consumer);
    let control: OwnedConnection;
    try {
      control = await stream.driver.openOwned(`pulse:sink:${name}:control`, stream.logger);
    } catch (err) {
      throw toPulseError(err, 'open sink connection');
    }
    const sink = new Sink(stream, name, consumer, settings, control);
    try {
      await sink.#loops.add(stream.key);
    } catch (err) {
      control.close();
      throw err;
    }
    sink.#maintenance = new SinkMaintenance(sink.#maintenanceHost());
    return sink;
  }

  /** What this instance has delivered, acked, redelivered, dead-lettered and found lost. */
  get counters(): Readonly<SinkCounters> {
    return { ...this.#counters };
  }

  /**
   * A new subscription that receives every event this instance reads from now on.
   * @throws ClosedError after `close()`.
   */
  subscribe(options?: SubscribeOptions): Subscription<SinkEvent> {
    if (this.#closed) throw new ClosedError('sink is closed');
    const sub = this.#fanout.add(options?.signal);
    this.#loops.start();
    return sub;
  }

  /** Ends a subscription's iteration. */
  unsubscribe(subscription: Subscription<SinkEvent>): void {
    this.#fanout.remove(subscription);
  }

  /** `for await (const ev of sink)` is `subscribe()`. */
  [Symbol.asyncIterator](): AsyncIterator<SinkEvent> {
    return this.subscribe();
  }

  /**
   * Acknowledges events, in one round trip for events of one stream.
   * Works after `close()`. Resolves at once for `noAck` sinks.
   */
  ack(...events: Event[]): Promise<void> {
    if (this.#settings.noAck || events.length === 0) return Promise.resolve();
    // By stream name, not key: the name is the same string object every time
    // (its hash is cached), a key built per event would be hashed per event.
    for (const e of events) {
      const ids = this.#pendingAcks.get(e.streamName);
      if (ids) ids.push(e.id);
      else this.#pendingAcks.set(e.streamName, [e.id]);
    }
    // Acks issued in the same turn of the event loop travel as one XACK per stream.
    this.#ackFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flushAcks());
    return this.#ackFlush;
  }

  async #flushAcks(): Promise<void> {
    const batch = this.#pendingAcks;
    this.#pendingAcks = new Map();
    this.#ackFlush = undefined;
    const driver = this.#main.driver;
    const results = await Promise.allSettled(
      [...batch].map(([name, ids]) => {
        const key = streamKey(name);
        return driver.send(['XACK', key, this.name, ...ids], key);
      }),
    );
    let failure: unknown;
    for (const r of results) {
      if (r.status === 'fulfilled') this.#counters.acked += Number(r.value);
      else failure ??= r.reason;
    }
    if (failure !== undefined) throw toPulseError(failure, `ack events of sink ${this.name}`);
  }

  /** @internal See `SinkEvent.nack`. */
  async nack(event: SinkEvent, options?: NackOptions): Promise<void> {
    if (this.#settings.noAck) return;
    const grace = this.#settings.graceMs;
    const delay = checkInt('delayMs', options?.delayMs, grace, 0);
    const key = streamKey(event.streamName);
    try {
      // On the control connection while open, behind any hold of buffered
      // events already sent there, so a hold never undoes this nack.
      const conn = this.#closed ? this.#main.driver : this.#control;
      const gone = await this.#touch(conn, key, Math.max(0, grace - delay), [event.id], true);
      // Given back but no longer in the stream: it can never be redelivered.
      if (gone.length > 0) await this.#reportGone(key, gone, 'event trimmed or deleted before it could be redelivered');
    } catch (err) {
      throw toPulseError(err, `nack event ${event.id}`);
    }
  }

  /** @internal See `SinkEvent.inProgress`. */
  async inProgress(event: SinkEvent): Promise<void> {
    if (this.#settings.noAck) return;
    try {
      // A trimmed entry is left to the handler: its ack or nack decides.
      await this.#touch(this.#main.driver, streamKey(event.streamName), 0, [event.id]);
    } catch (err) {
      throw toPulseError(err, `inProgress event ${event.id}`);
    }
  }

  async #touch(conn: Connection, key: string, idleMs: number, ids: string[], ackGone = false): Promise<string[]> {
    const args = [this.name, this.consumerName, idleMs, ackGone ? '1' : '', ...ids];
    const gone = (await evalScript(conn, touch, [key], args)) as unknown[];
    return gone.map(str);
  }

  /** Entries gone from the stream before they were handled: reported lost and cleared from the pending list. */
  async #reportGone(key: string, ids: string[], why: string): Promise<void> {
    this.#counters.lost += ids.length;
    this.#logger.warn({ stream: streamNameOf(key), ids }, why);
    await this.#main.driver.send(['XACK', key, this.name, ...ids], key);
  }

  /**
   * Runs `handler` for each event with at most `concurrency` in flight: acks on
   * success, nacks on a throw. While a handler runs, the event is kept in
   * progress so a slow handler is not mistaken for a dead one. Resolves when
   * `signal` aborts or the sink closes, after in-flight handlers finish.
   */
  async process(handler: (event: SinkEvent) => unknown, options?: ProcessOptions): Promise<void> {
    await runProcess(
      {
        subscribe: (o) => this.subscribe(o),
        logger: this.#logger,
        graceMs: this.#settings.graceMs,
        noAck: this.#settings.noAck,
        keepInProgress: (running) => this.#keepInProgress(running),
      },
      handler,
      options,
    );
  }

  /** Resets the idle time of events whose handler is still running, one call per stream. */
  #keepInProgress(running: ReadonlySet<SinkEvent>): void {
    const byStream = new Map<string, string[]>();
    for (const ev of running) {
      const key = streamKey(ev.streamName);
      const ids = byStream.get(key) ?? [];
      byStream.set(key, ids);
      ids.push(ev.id);
    }
    for (const [key, ids] of byStream) {
      this.#touch(this.#main.driver, key, 0, ids).catch((err: unknown) =>
        this.#logger.warn({ count: ids.length, err: errorText(err) }, 'keeping events in progress failed'),
      );
    }
  }

  /** The sink as its background work sees it. */
  #maintenanceHost(): MaintenanceHost {
    return {
      name: this.name,
      consumerName: this.consumerName,
      settings: this.#settings,
      control: this.#control,
      driver: this.#main.driver,
      verifyReads: () => this.#verifyReads([...this.#streams.values()]),
      logger: this.#logger,
      counters: this.#counters,
      fanout: this.#fanout,
      streams: () => this.#streams.values(),
      deliver: (s, entries, counts, redelivery) => this.#deliver(s, entries, counts, redelivery),
      touch: (conn, key, idleMs, ids) => this.#touch(conn, key, idleMs, ids),
      reportGone: (key, ids, why) => this.#reportGone(key, ids, why),
      resume: async (s) => {
        this.#idle.delete(this.#loops.groupOf(s.stream.key));
        await this.#loops.add(s.stream.key);
      },
    };
  }

  /**
   * Also reads `stream` (the group is created on it from `startAt`, default the
   * sink's own). Does nothing when the stream is already read.
   * @throws ClosedError after `close()`.
   */
  async addStream(stream: Stream, options?: AddStreamOptions): Promise<void> {
    if (this.#closed) throw new ClosedError('sink is closed');
    checkSameClient(this.#main, stream);
    const start = options?.startAt === undefined ? this.#settings.start : parseStart('startAt', options.startAt);
    if (this.#streams.has(stream.key)) return;
    await ensureGroup(stream, this.name, start, this.consumerName);
    if (this.#closed) throw new ClosedError('sink is closed');
    if (this.#streams.has(stream.key)) return;
    this.#streams.set(stream.key, this.#sinkStream(stream));
    this.#idle.delete(this.#loops.groupOf(stream.key));
    await this.#loops.add(stream.key);
  }

  /**
   * Stops reading `stream`. When this was the sink's last consumer on it and
   * nothing is pending, the consumer group on that stream is destroyed. Idempotent.
   */
  async removeStream(stream: Stream): Promise<void> {
    if (this.#closed) return;
    checkSameClient(this.#main, stream);
    const s = this.#streams.get(stream.key);
    if (!s) return;
    this.#streams.delete(stream.key);
    await this.#loops.remove(stream.key, (group) => ![...this.#streams.keys()].some((k) => this.#loops.groupOf(k) === group));
    await this.#flushPendingAcks();
    await this.#verifyReads([s]);
    try {
      await evalScript(
        this.#control,
        leave,
        [s.stream.key, s.keys.consumers, s.keys.lease, s.registry],
        [this.name, this.consumerName, '1', 2 * this.#settings.graceMs],
      );
    } catch (err) {
      throw toPulseError(err, `remove stream ${stream.name} from sink ${this.name}`);
    }
  }

  /**
   * Stops reading and ends every subscription. Events not acked stay pending
   * and go to another consumer after the grace period; `ack` still works.
   * Safe to call many times and concurrently.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#fanout.endAll();
      const maintenance = this.#maintenance?.stop();
      await this.#loops.stop();
      // A command stuck on a stopped Redis must not hang close(): wait a
      // bounded time, then closing the control connection rejects it.
      const bounded = CLOSE_STEP_MS;
      await within(maintenance ?? Promise.resolve(), bounded);
      await within(this.#flushPendingAcks(), bounded);
      await within(this.#verifyReads([...this.#streams.values()]), bounded);
      await Promise.all(
        [...this.#streams.values()].map(async (s) => {
          try {
            await within(
              evalScript(
                this.#control,
                leave,
                [s.stream.key, s.keys.consumers, s.keys.lease, s.registry],
                [this.name, this.consumerName, '0', 2 * this.#settings.graceMs],
              ),
              bounded,
            );
          } catch (err) {
            this.#logger.warn({ stream: s.stream.name, err: errorText(err) }, 'could not leave the group cleanly');
          }
        }),
      );
      this.#control.close();
    })();
    return this.#closing;
  }

  /** True once `close()` was called (or a fatal error stopped the sink). */
  isClosed(): boolean {
    return this.#closed;
  }

  /** `await using sink = ...` closes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #flushPendingAcks(): Promise<void> {
    if (!this.#ackFlush) return;
    await this.#ackFlush.catch((err: unknown) => this.#logger.warn({ err: errorText(err) }, 'ack failed'));
  }

  #sinkStream(stream: Stream): SinkStream {
    const deadName = this.#settings.deadLetterStream ?? `${stream.name}:dead`;
    return {
      stream,
      keys: sinkKeys(stream.name, this.name),
      registry: sinkRegistryKey(stream.name),
      deadName,
      deadKey: streamKey(deadName),
      ready: true,
      checked: undefined,
      unverified: undefined,
      trusted: true,
      leaseHeld: false,
    };
  }

  /**
   * How a sink reads, so that entries trimmed before the group read them are
   * counted (XREADGROUP jumps over them without a word; see `checkTrimmed`):
   * - while there is more to read: one MULTI, the check, then a non-blocking
   *   XREADGROUP;
   * - once a read came back short: a blocking XREADGROUP alone, one round
   *   trip from add to handler, as fast as a hand-written loop. What such a
   *   read may have jumped is counted by a later check, which verifies it
   *   from where the group was before it: the next MULTI read's, the
   *   keep-alive's (every grace period / 4, at most 5 s), or `close()`'s.
   */
  #nextRead(group: number): ((conn: OwnedConnection) => Promise<unknown>) | undefined {
    const streams = [...this.#streams.values()].filter((s) => s.ready && this.#loops.groupOf(s.stream.key) === group);
    if (streams.length === 0) return undefined;
    const keys = streams.map((s) => s.stream.key);
    const { maxPolled, blockMs, noAck } = this.#settings;
    const blocking = this.#idle.has(group);
    const read: Arg[] = ['XREADGROUP', 'GROUP', this.name, this.consumerName, 'COUNT', maxPolled];
    if (noAck) read.push('NOACK');
    if (blocking) read.push('BLOCK', blockMs);
    read.push('STREAMS', ...keys);
    for (let i = 0; i < keys.length; i++) read.push('>');
    if (blocking) {
      return async (conn) => {
        try {
          const got: Outcome = { ok: true, value: await conn.send(read, keys[0]) };
          return { streams, blocking, got, checked: undefined };
        } catch (err) {
          // The next read is a checked one: its check says which stream lost its key or group.
          this.#idle.delete(group);
          throw err;
        }
      };
    }
    const check = this.#checkCommand(streams);
    return async (conn) => {
      const [checked, got] = await conn.transaction([check, read], keys[0]);
      if (!checked?.ok) throw checked?.error ?? new Error('no reply to the trim check');
      return { streams, blocking, got, checked };
    };
  }

  /** The trim check of these streams, verifying what blocking reads delivered since the last check. */
  #checkCommand(streams: readonly SinkStream[]): Arg[] {
    // A connection that came back may talk to a restarted or promoted Redis:
    // its groups' entries-read counters are stale until resynced.
    const reconnects = this.#control.reconnects() + this.#loops.reconnects();
    if (reconnects !== this.#reconnects) {
      this.#reconnects = reconnects;
      for (const s of this.#streams.values()) s.trusted = false;
    }
    // EVAL, not EVALSHA: a NOSCRIPT inside MULTI would let the read run unchecked.
    const cmd: Arg[] = ['EVAL', checkTrimmed.source, streams.length];
    for (const s of streams) cmd.push(s.stream.key);
    cmd.push(this.name, VERIFY_MAX_ENTRIES);
    for (const s of streams) cmd.push(s.trusted ? (s.unverified?.from ?? '') : 'r');
    return cmd;
  }

  async #onReply(group: number, result: unknown): Promise<void> {
    const { streams, got, checked, blocking } = result as {
      streams: SinkStream[];
      got: Outcome | undefined;
      checked: Outcome | undefined;
      blocking: boolean;
    };
    // A read that failed (NOGROUP, WRONGTYPE on one stream) read nothing: the check says why.
    const byKey = new Map(got?.ok ? streamEntries(got.value) : []);
    let read = 0;
    let full = false;
    for (const s of streams) {
      const batch = byKey.get(s.stream.key) ?? [];
      if (batch.length === 0) continue;
      read += batch.length;
      if (batch.length >= this.#settings.maxPolled) full = true;
      if (blocking) {
        const to = (batch[batch.length - 1] as RawEntry)[0];
        if (s.unverified) s.unverified.to = to;
        else s.unverified = { from: s.checked ?? '0-0', to };
      }
      // Removed while the read was in flight: left pending for the group.
      if (this.#streams.get(s.stream.key) === s) this.#deliver(s, batch, 1, false);
    }
    // A short batch drained the streams: block for news instead of polling.
    if (!full) this.#idle.add(group);
    else this.#idle.delete(group);
    if (!checked) return;
    if (!checked.ok) throw checked.error;
    const checks = checked.value as unknown[];
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i] as SinkStream;
      const status = await this.#applyCheck(s, (checks[i] ?? []) as unknown[]);
      if (status === 'wrongtype') return;
      if (status !== 'ok') this.#idle.delete(group);
    }
    if (got && !got.ok && read === 0 && !checks.some((r) => str((r as unknown[])[0]) !== 'ok')) throw got.error;
  }

  /** Acts on one stream's trim check result; returns its status. */
  async #applyCheck(s: SinkStream, r: unknown[]): Promise<string> {
    const status = str(r[0]);
    if (status === 'ok') {
      const skipped = Number(r[1]);
      if (skipped > 0) {
        this.#counters.lost += skipped;
        this.#logger.warn({ stream: s.stream.name, count: skipped }, 'events trimmed before this sink read them');
      }
      const last = str(r[2]);
      const verified = Number(r[3]) === 1;
      s.checked = last;
      if (!s.trusted) {
        if (Number(r[4]) === 1)
          this.#logger.warn(
            { stream: s.stream.name },
            'events trimmed before this sink read them; how many is unknown after Redis restarted or failed over',
          );
        // Resynced: what blocking reads jumped before it can no longer be counted.
        if (verified) s.trusted = true;
      }
      if (verified && s.unverified) {
        // Verified up to where the group was at the check; reads after it stay to verify.
        s.unverified = compareIds(last, s.unverified.to) >= 0 ? undefined : { from: last, to: s.unverified.to };
      }
    } else if (status === 'wrongtype') {
      this.#fail(new PulseError(`sink stopped: key ${s.stream.key} holds another type`, { code: 'WRONGTYPE' }));
    } else if (status === 'nokey') {
      if (s.ready) this.#logger.warn({ stream: s.stream.name }, 'stream key is gone: waiting for it to be created again');
      s.ready = false;
    } else if (status === 'nogroup') {
      await this.#recreate(s);
    }
    return status;
  }

  /** Runs the trim check for what blocking reads delivered since the last one, so no loss goes unreported. */
  async #verifyReads(streams: readonly SinkStream[]): Promise<void> {
    const pending = streams.filter((s) => s.unverified !== undefined || !s.trusted);
    for (const s of pending) {
      try {
        const checks = (await this.#control.send(this.#checkCommand([s]), s.stream.key)) as unknown[];
        const r = (checks[0] ?? []) as unknown[];
        // Only the count: a missing key or group is for the read loop to handle, not a leaving sink.
        if (str(r[0]) === 'ok') await this.#applyCheck(s, r);
      } catch (err) {
        this.#logger.warn({ stream: s.stream.name, err: errorText(err) }, 'could not check the last reads for trimmed events');
      }
    }
  }

  /** Hands events to subscribers; acks those the topic or filter rejects. */
  #deliver(s: SinkStream, entries: readonly RawEntry[], counts: number | readonly number[], redelivery: boolean): void {
    const matches = this.#settings.matches;
    const rejected: string[] = [];
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as RawEntry;
      const init = eventInit(s.stream.name, entry, typeof counts === 'number' ? counts : (counts[i] ?? 1));
      if (!init.complete)
        this.#logger.warn({ stream: s.stream.name, id: entry[0] }, 'entry without n or p: delivered with defaults');
      const ev = new SinkEvent(init, this.name, this);
      if (matches) {
        let ok: boolean;
        try {
          ok = matches(ev);
        } catch (err) {
          this.#logger.error({ id: entry[0], err: errorText(err) }, 'filter threw: event treated as rejected');
          ok = false;
        }
        if (!ok) {
          rejected.push(entry[0]);
          continue;
        }
      }
      if (redelivery) this.#counters.redelivered++;
      else this.#counters.delivered++;
      this.#fanout.deliver(ev);
    }
    if (rejected.length > 0) {
      this.#counters.filtered += rejected.length;
      if (!this.#settings.noAck) {
        this.#main.driver.send(['XACK', s.stream.key, this.name, ...rejected], s.stream.key).catch((err: unknown) => {
          // Left pending: the next reclaim filters and acks them again.
          this.#logger.warn({ err: errorText(err), count: rejected.length }, 'ack of filtered events failed');
        });
      }
    }
  }

  async #onReadError(err: unknown): Promise<'retry' | 'again' | 'stop'> {
    if (isReplyError(err, 'WRONGTYPE')) {
      this.#fail(toPulseError(err, 'sink stopped: a stream key holds another type'));
      return 'stop';
    }
    // A blocking read found no group: the checked read that follows recreates it.
    if (isReplyError(err, 'NOGROUP')) return 'again';
    return 'retry';
  }

  /** NOGROUP: recreate the group at 0 if the stream key exists (nothing lost), else wait for the key. */
  async #recreate(s: SinkStream): Promise<void> {
    const keys = [s.stream.key, s.registry, s.keys.consumers];
    const ok = Number(await evalScript(this.#control, recreateGroup, keys, [this.name, this.consumerName])) === 1;
    // The group starts over at 0: what was checked of the old one says nothing of it.
    s.checked = undefined;
    s.unverified = undefined;
    if (ok) {
      this.#logger.warn({ stream: s.stream.name }, 'consumer group missing (NOGROUP): recreated at 0, events may be redelivered');
    } else {
      s.ready = false;
      this.#logger.warn({ stream: s.stream.name }, 'stream key is gone (NOGROUP): waiting for it to be created again');
    }
  }

  #fail(err: PulseError): void {
    this.#logger.error({ err: err.message }, 'sink stopped');
    this.#closed = true;
    this.#fanout.endAll(err);
    void this.#maintenance?.stop();
  }
}

/** Creates the sink's group on a stream unless it exists, and registers the consumer. */
async function ensureGroup(stream: Stream, sinkName: string, start: ResolvedStart, consumer: string): Promise<void> {
  const keys = sinkKeys(stream.name, sinkName);
  try {
    await evalScript(
      stream.driver,
      createGroup,
      [stream.key, sinkRegistryKey(stream.name), keys.consumers],
      [sinkName, start.kind === 'newest' ? '$newest' : start.id, stream.ttlMs ?? '', consumer],
    );
  } catch (err) {
    throw toPulseError(err, `create sink ${sinkName} on stream ${stream.name}`);
  }
}
