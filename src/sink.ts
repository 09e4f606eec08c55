import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ClosedError, type PulseError } from './errors.js';
import { type Event, type EventOwner, SinkEvent } from './event.js';
import { Backoff } from './internal/backoff.js';
import { type Connection, evalScript, type OwnedConnection } from './internal/driver.js';
import { lastRemovalKey, removedKey, sinkKeys, sinkRegistryKey, streamKey, streamNameOf } from './internal/keys.js';
import { ReadLoops } from './internal/loops.js';
import { takeObituary } from './internal/lossScripts.js';
import { runProcess } from './internal/process.js';
import { ReadLoop } from './internal/readLoop.js';
import { errorText, toPulseError } from './internal/redisErrors.js';
import { eventInit, type RawEntry, str } from './internal/replies.js';
import { createGroup, leave, reown, touch } from './internal/scripts.js';
import { type MaintenanceHost, SinkMaintenance } from './internal/sinkMaintenance.js';
import { SinkReads } from './internal/sinkRead.js';
import { type SinkCounters, type SinkSettings, type SinkStream, sinkSettings } from './internal/sinkState.js';
import { parseStart, type ResolvedStart } from './internal/start.js';
import { checkInt, checkName } from './internal/validate.js';
import type { Logger } from './logger.js';
import type { AddStreamOptions, NackOptions, ProcessOptions, SinkOptions, SubscribeOptions } from './options.js';
import { checkSameClient } from './reader.js';
import type { Stream } from './stream.js';
import { Fanout, type OwnershipGate, type Subscription } from './subscription.js';

export type { SinkCounters };

function consumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Longest wait of each step of `close()` on an unresponsive Redis. */
const CLOSE_STEP_MS = 2000;

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
  readonly #reads: SinkReads;
  /** Makes sure buffered events are still ours before they are handed out (see `OwnershipGate`). */
  readonly #gate: OwnershipGate<SinkEvent>;

  private constructor(main: Stream, name: string, consumer: string, settings: SinkSettings, control: OwnedConnection) {
    this.name = name;
    this.consumerName = consumer;
    this.#main = main;
    this.#settings = settings;
    this.#control = control;
    // Half the grace period: an event whose last hold is younger cannot have
    // been claimed by another consumer (claims need a full grace period idle).
    this.#gate = { staleMs: Math.floor(settings.graceMs / 2), check: (items) => this.#recheck(items) };
    this.#logger = main.logger.child({ sink: name, consumer });
    this.#streams.set(main.key, this.#sinkStream(main));
    this.#fanout = new Fanout<SinkEvent>(settings.bufferSize);
    this.#reads = new SinkReads({
      name,
      consumerName: consumer,
      settings,
      control,
      logger: this.#logger,
      streams: this.#streams,
      loops: () => this.#loops,
      deliver: (s, entries, counts, redelivery) => this.#deliver(s, entries, counts, redelivery),
      countLost: (stream, count, why, ids) => this.#countLost(stream, count, why, ids),
      fail: (err) => this.#fail(err),
      streamGone: (s) => this.#streamGone(s),
    });
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
          nextRead: () => this.#reads.nextRead(group),
          onReply: (reply) => this.#reads.onReply(group, reply),
          onError: (err) => this.#reads.onReadError(err),
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
    if (!this.#settings.noAck) sub.setGate(this.#gate);
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
    try {
      // On the control connection while open, behind any hold of buffered
      // events already sent there, so a hold never undoes this nack.
      const conn = this.#closed ? this.#main.driver : this.#control;
      // Redis cannot set an idle time below 0: a delay past the grace period
      // is kept in the sink's delays set, which the claim script consults.
      const nack = delay > grace ? { delayMs: delay } : {};
      const gone = await this.#touch(conn, event.streamName, Math.max(0, grace - delay), [event.id], nack);
      // Given back but no longer in the stream: it can never be redelivered.
      if (gone.length > 0)
        await this.#reportGone(streamKey(event.streamName), gone, 'event trimmed or deleted before it could be redelivered');
    } catch (err) {
      throw toPulseError(err, `nack event ${event.id}`);
    }
  }

  /** @internal See `SinkEvent.inProgress`. */
  async inProgress(event: SinkEvent): Promise<void> {
    if (this.#settings.noAck) return;
    try {
      // A trimmed entry is left to the handler: its ack or nack decides.
      await this.#touch(this.#main.driver, event.streamName, 0, [event.id]);
    } catch (err) {
      throw toPulseError(err, `inProgress event ${event.id}`);
    }
  }

  /**
   * Sets the idle time of our own pending events of one stream (see the
   * `touch` script); with `nack`, gives them back, after `delayMs` when set.
   * Returns the IDs no longer in the stream.
   */
  async #touch(
    conn: Connection,
    streamName: string,
    idleMs: number,
    ids: string[],
    nack?: { delayMs?: number },
  ): Promise<string[]> {
    const args = [this.name, this.consumerName, idleMs, nack ? '1' : '', nack?.delayMs ?? '', ...ids];
    const keys = [streamKey(streamName), sinkKeys(streamName, this.name).delays];
    const gone = (await evalScript(conn, touch, keys, args)) as unknown[];
    return gone.map(str);
  }

  /** Entries gone from the stream before they were handled: reported lost and cleared from the pending list. */
  async #reportGone(key: string, ids: string[], why: string): Promise<void> {
    this.#countLost(streamNameOf(key) ?? key, ids.length, why, ids);
    await this.#main.driver.send(['XACK', key, this.name, ...ids], key);
  }

  /**
   * The stream's key is gone under this sink. After `destroy()`, its
   * obituary says what went with it for the whole sink (one instance takes
   * it); after an expiry nothing says it all: this instance counts what it
   * buffered and, holding the lease, the unread events of its last check, as
   * a lower bound.
   */
  async #streamGone(s: SinkStream): Promise<void> {
    const buffered = new Set<string>();
    for (const sub of this.#fanout.subs) for (const ev of sub.queued()) if (ev.streamName === s.stream.name) buffered.add(ev.id);
    this.#maintenance?.dropBuffered(s.stream.name, [...buffered]);
    let destroyed = 0;
    try {
      destroyed = Number(await evalScript(this.#control, takeObituary, [s.keys.obituary], []));
    } catch (err) {
      this.#logger.warn({ stream: s.stream.name, err: errorText(err) }, 'could not read what destroy() took from this sink');
    }
    if (destroyed > 0) {
      this.#countLost(s.stream.name, destroyed, 'events deleted with their stream (destroy) before this sink handled them');
      return;
    }
    const unread = s.leaseHeld && s.lag > 0 ? s.lag : 0;
    if (buffered.size + unread > 0)
      this.#countLost(
        s.stream.name,
        buffered.size + unread,
        'events gone with their stream (expired or deleted) before this sink handled them, at least this many',
      );
  }

  /** Every loss this instance finds goes through here: counted and reported. */
  #countLost(stream: string, count: number, why: string, ids?: readonly string[]): void {
    this.#counters.lost += count;
    this.#logger.warn(ids ? { stream, count, ids } : { stream, count }, why);
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

  /**
   * The ownership check of buffered events whose hold may have lapsed: those
   * still ours are held again; those another consumer took, or that were
   * dead-lettered or reported lost meanwhile, are dropped from the buffers
   * (never handed out); those gone from the stream are reported lost.
   * Retries until it succeeds or the sink closes: handing out an unchecked
   * event could mean handling one that is no longer ours.
   */
  async #recheck(items: readonly SinkEvent[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const ev of items) {
      const ids = byStream.get(ev.streamName) ?? [];
      byStream.set(ev.streamName, ids);
      ids.push(ev.id);
    }
    const backoff = new Backoff(50, 2000);
    for (const [name, ids] of byStream) {
      const key = streamKey(name);
      for (let i = 0; i < ids.length; i += 500) {
        const slice = ids.slice(i, i + 500);
        for (;;) {
          if (this.#closed) return;
          try {
            const [notOurs, gone] = (await evalScript(this.#control, reown, [key], [this.name, this.consumerName, ...slice])) as [
              unknown[],
              unknown[],
            ];
            const drop = [...notOurs.map(str), ...gone.map(str)];
            if (drop.length > 0) this.#maintenance?.dropBuffered(name, drop);
            if (notOurs.length > 0)
              this.#logger.info(
                { stream: name, count: notOurs.length },
                'buffered events were taken over while this consumer stalled: dropped, not handed out',
              );
            if (gone.length > 0)
              this.#countLost(name, gone.length, 'events trimmed or deleted while waiting for a subscriber', gone.map(str));
            break;
          } catch (err) {
            const delay = backoff.next();
            this.#logger.warn(
              { stream: name, err: errorText(err), retryInMs: delay },
              'ownership check of buffered events failed, retrying',
            );
            await new Promise((r) => setTimeout(r, delay));
          }
        }
      }
    }
  }

  /** Resets the idle time of events whose handler is still running, one call per stream. */
  #keepInProgress(running: ReadonlySet<SinkEvent>): void {
    const byStream = new Map<string, string[]>();
    for (const ev of running) {
      const ids = byStream.get(ev.streamName) ?? [];
      byStream.set(ev.streamName, ids);
      ids.push(ev.id);
    }
    for (const [name, ids] of byStream) {
      this.#touch(this.#main.driver, name, 0, ids).catch((err: unknown) =>
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
      verifyReads: () => this.#reads.verifyReads([...this.#streams.values()]),
      logger: this.#logger,
      counters: this.#counters,
      fanout: this.#fanout,
      streams: () => this.#streams.values(),
      deliver: (s, entries, counts, redelivery) => this.#deliver(s, entries, counts, redelivery),
      touch: (conn, name, idleMs, ids) => this.#touch(conn, name, idleMs, ids),
      reportGone: (key, ids, why) => this.#reportGone(key, ids, why),
      countLost: (name, count, why, ids) => this.#countLost(name, count, why, ids),
      resume: async (s) => {
        this.#reads.wake(this.#loops.groupOf(s.stream.key));
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
    this.#reads.wake(this.#loops.groupOf(stream.key));
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
    await this.#reads.verifyReads([s]);
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
      await within(this.#reads.verifyReads([...this.#streams.values()]), bounded);
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
      lastRemoval: lastRemovalKey(stream.name),
      removed: removedKey(stream.name),
      deadName,
      deadKey: streamKey(deadName),
      ready: true,
      checked: undefined,
      unverified: undefined,
      trusted: true,
      unknownReported: false,
      lag: -1,
      leaseHeld: false,
    };
  }

  /** Hands events to subscribers; acks those the topic or filter rejects. */
  #deliver(s: SinkStream, entries: readonly RawEntry[], counts: number | readonly number[], redelivery: boolean): void {
    const matches = this.#settings.matches;
    const rejected: string[] = [];
    const heldAt = this.#maintenance?.heldAt() ?? Date.now();
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
      this.#fanout.deliver(ev, heldAt);
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
