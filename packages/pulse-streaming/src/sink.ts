import type { SinkCounters } from './counters.js';
import { ClosedError, type PulseError } from './errors.js';
import type { Event, EventMap, SinkEvent, SinkEventOf, Untyped } from './event.js';
import { type SinkAcks, settleForAck } from './internal/acks.js';
import { checkOpen, type OwnedConnection } from './internal/driver.js';
import type { Fanout } from './internal/fanout.js';
import { streamKey } from './internal/keys.js';
import type { ReadLoops } from './internal/loops.js';
import type { LossReport } from './internal/lossReport.js';
import { nackEvent } from './internal/nacks.js';
import { countObituaryAtJoin, joinNewConsumer } from './internal/ownership.js';
import { PerKey } from './internal/perKey.js';
import { runProcess } from './internal/process.js';
import { runProcessBatch } from './internal/processBatch.js';
import type { ProcessHost } from './internal/processHost.js';
import type { ReadAhead } from './internal/readAhead.js';
import { errorText } from './internal/redisErrors.js';
import { processHost } from './internal/settle.js';
import { sharedAbort } from './internal/signals.js';
import type { SinkHolds } from './internal/sinkHolds.js';
import { type MaintenanceHost, maintenanceHost, oneAtATime } from './internal/sinkHosts.js';
import { CLOSE_STEP_MS, type Leaver, leaveAll, reportDestroyed, within } from './internal/sinkLeave.js';
import { SinkMaintenance } from './internal/sinkMaintenance.js';
import { addSinkStream, type MembershipHost, removeSinkStream } from './internal/sinkMembership.js';
import type { SinkReads } from './internal/sinkRead.js';
import { newSinkCounters, newSinkStream, type SinkSettings, type SinkStream, sinkSettings } from './internal/sinkState.js';
import { wireSink } from './internal/sinkWiring.js';
import { addStreamStart } from './internal/start.js';
import { checkSameClient, type StreamHandle } from './internal/streamHandle.js';
import { checkDeadName, checkName, checkNoAck, nackDelay, subscribeSignal } from './internal/validate.js';
import type { Logger } from './logger.js';
import type {
  AddStreamOptions,
  NackOptions,
  ProcessBatchOptions,
  ProcessOptions,
  SinkOptions,
  SubscribeOptions,
} from './options.js';
import type { Stream } from './stream.js';
import type { OwnershipGate, Subscription } from './subscription.js';

export type { SinkCounters };

/**
 * A sink: one consumer of a Redis consumer group. All sink instances with the
 * same name share one cursor and split the events; an event left unacked for
 * the grace period is redelivered to a live instance. A sink of a typed
 * stream yields its typed events (see {@link Stream}).
 */
export class Sink<Events extends EventMap = Untyped> implements AsyncIterable<SinkEventOf<Events>> {
  /** The sink name (the consumer group). */
  readonly name: string;
  /** This instance's unique Redis consumer name. */
  readonly consumerName: string;
  readonly #settings: SinkSettings;
  readonly #main: StreamHandle;
  readonly #streams = new Map<string, SinkStream>();
  readonly #fanout: Fanout<SinkEvent>;
  /** Resolves once the events dropped unseen so far are given back (see giveBack.ts). */
  readonly #givenBack: () => Promise<void>;
  readonly #loops: ReadLoops<SinkEvent>;
  readonly #control: OwnedConnection;
  readonly #readAhead: ReadAhead;
  readonly #logger: Logger;
  readonly #counters: SinkCounters = newSinkCounters();
  #maintenance: SinkMaintenance | undefined;
  readonly #acks: SinkAcks;
  #closed = false;
  /** The error that stopped the sink, if one did: the cause of the `ClosedError`s after it. */
  #failure: PulseError | undefined;
  #closing: Promise<void> | undefined;
  readonly #reads: SinkReads;
  /** Makes sure buffered events are still ours before they are handed out (see `OwnershipGate`). */
  readonly #gate: OwnershipGate<SinkEvent>;
  readonly #holds: SinkHolds;
  readonly #losses: LossReport;
  /** Aborts when the sink closes or fails, for what waits on Redis without a connection of its own to close. */
  readonly #closedSignal = sharedAbort();
  /** addStream and removeStream of one stream, one at a time. */
  readonly #perStream = new PerKey();

  private constructor(main: StreamHandle, name: string, consumer: string, settings: SinkSettings, control: OwnedConnection) {
    this.name = name;
    this.consumerName = consumer;
    this.#main = main;
    this.#settings = settings;
    this.#control = control;
    this.#logger = main.logger.child({ sink: name, consumer });
    this.#streams.set(main.key, newSinkStream(this.name, this.#settings, main));
    const parts = wireSink({
      ...{ main, name, consumerName: consumer, settings, control, logger: this.#logger, counters: this.#counters },
      ...{ streams: this.#streams, owner: this, closed: this.#closedSignal.signal },
      maintenance: () => this.#maintenance,
      recover: (n) => this.#recover(n),
      fail: (err) => this.#fail(err),
      openControl: () => (this.#closed ? undefined : this.#control),
    });
    this.#losses = parts.losses;
    this.#fanout = parts.fanout;
    this.#gate = parts.gate;
    this.#givenBack = parts.givenBack;
    this.#acks = parts.acks;
    this.#holds = parts.holds;
    this.#reads = parts.reads;
    this.#readAhead = parts.readAhead;
    this.#loops = parts.loops;
  }

  /** @internal Use `stream.newSink()`. */
  static async create<Events extends EventMap>(
    stream: Stream<Events>,
    name: string,
    options: SinkOptions,
  ): Promise<Sink<Events>> {
    checkName('sink', name);
    const settings = sinkSettings(options);
    checkNoAck(settings);
    checkDeadName(settings.deadLetterStream, stream.name);
    checkOpen(stream.driver, `create sink ${name} on stream ${stream.name}`);
    const { consumer, control, leave } = await joinNewConsumer(stream, name, settings.start, settings.graceMs);
    let sink: Sink<Events>;
    try {
      // The constructor too: one that throws must not leave the connection open and the consumer registered.
      sink = new Sink<Events>(stream, name, consumer, settings, control);
      await sink.#loops.add(stream.key);
    } catch (err) {
      control.close();
      await leave();
      throw err;
    }
    sink.#maintenance = new SinkMaintenance(sink.#maintenanceHost());
    // What a destroy() of the stream took from the sink while no instance ran (outside review AK, defect 5).
    await countObituaryAtJoin(stream, name, sink.#logger, (st, n, why) => sink.#holds.countLost(st, n, why));
    return sink;
  }

  /** What this instance has delivered, acked, redelivered, dead-lettered and found lost. */
  get counters(): Readonly<SinkCounters> {
    return { ...this.#counters };
  }

  /**
   * A new subscription that receives its share of the events this instance reads from now on:
   * each event goes to one subscription of the instance (first to one waiting for an event; one
   * about to wait takes over half of what a busy sibling buffered; one that takes nothing for a
   * grace period gets nothing more until it asks again, and what it buffered goes to the others
   * or back to the sink with its delivery count restored). It first gets
   * those another subscription of it left unseen within the grace period (a `break`, an aborted `process()`).
   * @throws InvalidArgumentError for options that are not an object or a `signal` that is not an `AbortSignal`.
   * @throws ClosedError after `close()` (its cause is the error that stopped the sink, if one did).
   */
  subscribe(options?: SubscribeOptions): Subscription<SinkEventOf<Events>> {
    // Events of a typed stream decode with its codec: their types are the stream's map.
    return this.#subscribe(options) as unknown as Subscription<SinkEventOf<Events>>;
  }

  #subscribe(options?: SubscribeOptions): Subscription<SinkEvent> {
    const signal = subscribeSignal(options);
    if (this.#closed) throw this.#closedError();
    const sub = this.#fanout.add(signal);
    if (!this.#settings.noAck) sub.setGate(this.#gate);
    this.#loops.start();
    return sub;
  }

  /**
   * Ends a subscription's iteration; what it buffered goes to the instance's
   * other subscriptions, or back to the sink. Idempotent for this sink's own subscriptions.
   * @throws InvalidArgumentError when `subscription` is not one this sink instance returned.
   */
  unsubscribe(subscription: Subscription<SinkEventOf<Events>>): void {
    this.#fanout.unsubscribe(subscription, 'sink');
  }

  /** `for await (const ev of sink)` is `subscribe()`. */
  [Symbol.asyncIterator](): AsyncIterator<SinkEventOf<Events>> {
    return this.subscribe();
  }

  /**
   * Acknowledges events: the acks of one turn of the event loop travel as one
   * XACK per stream. Works after `close()`. Resolves at once for `noAck` sinks.
   *
   * Rejects with `InvalidArgumentError`, before any Redis call, for anything
   * that is not an event delivered by a sink of this name. An ack only fails
   * with the acks of the same stream and tick (a Redis error on that stream's
   * XACK), never because of another stream's.
   *
   * An event that is no longer pending (acked already, by this consumer or by
   * another one it was redelivered to after the grace period, dead-lettered
   * or reported lost) still resolves, but is counted in
   * `counters.staleAcks` and logged as a warning: it was handled more than
   * once, or after it was given up.
   */
  ack(...events: Event[]): Promise<void> {
    if (this.#settings.noAck || events.length === 0) return Promise.resolve();
    const bad = settleForAck(events, this, this.name);
    return bad ? Promise.reject(bad) : this.#acks.add(events);
  }

  /** @internal See `SinkEvent.nack`. */
  // async: a bad delayMs rejects, as ack() does, never throws; the nack is still sent in this call.
  async nack(event: SinkEvent, options?: NackOptions): Promise<void> {
    const delay = nackDelay(this.#settings, options);
    event.markSettled();
    // After close() on your client, which, closed while it waited to reconnect (ioredis), would never settle it.
    if (this.#closed) checkOpen(this.#main.driver, `nack event ${event.id}`);
    // On the control connection while open, behind any hold of buffered
    // events already sent there, so a hold never undoes this nack.
    await nackEvent(this.#holds, this.#closed ? this.#main.driver : this.#control, event, delay, this.#settings.graceMs);
    // Claimed again when due, not at the next sweep (every grace period / 2).
    this.#maintenance?.dueIn(streamKey(event.streamName), delay);
  }

  /** @internal See `SinkEvent.inProgress`. */
  inProgress(event: SinkEvent): Promise<void> {
    if (this.#settings.noAck) return Promise.resolve();
    return this.#holds.inProgress(event);
  }

  /**
   * Runs `handler` for each event with at most `concurrency` in flight: acks on
   * success; on a throw, nacks with the `retry` backoff of its delivery count
   * (1 s, 2 s, 4 s, ... up to 60 s by default, ±20% jitter). An event the
   * handler acked or nacked itself is left as it settled it. While a handler
   * runs, the event is kept in progress so a slow handler is not mistaken for
   * a dead one. An event of a typed stream whose `data` does not decode is
   * dead-lettered at once (reason `decode: ...`), never handed to the handler.
   * Resolves when `signal` aborts or the sink closes, after in-flight handlers finish.
   * @throws InvalidArgumentError for a bad handler or option, before any Redis call.
   * @throws PulseError when the sink stops on an error retrying cannot fix (a key
   *   of another type, a permission), after in-flight handlers finish.
   */
  async process(handler: (event: SinkEventOf<Events>) => unknown, options?: ProcessOptions): Promise<void> {
    await runProcess(this.#processHost(), handler as (event: SinkEvent) => unknown, options);
  }

  /**
   * Runs `handler` on batches of up to `maxBatch` events (default 100),
   * waiting at most `maxWaitMs` (default 20) after a batch's first event for
   * more, with at most `concurrency` batches in flight (default 1). The
   * handler may ack or nack some events itself; when it returns, the others
   * are acked (one call for all), and when it throws they are nacked with the
   * `retry` backoff of their delivery count. Events are kept in progress
   * while their batch runs, as in `process()`, and events of a typed stream
   * whose `data` does not decode are dead-lettered at once (reason
   * `decode: ...`), never handed to the handler. Resolves when `signal`
   * aborts or the sink closes, after in-flight batches finish.
   * @throws InvalidArgumentError for a bad handler or option, before any Redis call.
   * @throws PulseError when the sink stops on an error retrying cannot fix, after
   *   in-flight batches finish.
   */
  async processBatch(handler: (events: SinkEventOf<Events>[]) => unknown, options?: ProcessBatchOptions): Promise<void> {
    await runProcessBatch(this.#processHost(), handler as (events: SinkEvent[]) => unknown, options);
  }

  /** What `process()` and `processBatch()` use of the sink. */
  #processHost(): ProcessHost {
    return processHost({
      subscribe: (o) => this.#subscribe(o),
      sinkName: this.name,
      consumerName: this.consumerName,
      settings: this.#settings,
      driver: this.#main.driver,
      connection: () => (this.#closed ? this.#main.driver : this.#control),
      holds: this.#holds,
      counters: this.#counters,
      logger: this.#logger,
      // Retry nacks are claimed again when due, as `nack()`'s are, not at the next sweep.
      dueIn: (streamName, ms) => this.#maintenance?.dueIn(streamKey(streamName), ms),
      // A dead-letter write Redis refuses for good ends the sink, as the sweep's does.
      fail: (err) => this.#fail(err),
    });
  }

  /** Lets the read path check stream `name` now (see `SinkReads.recover`), one check of a stream at a time (see `oneAtATime`). */
  readonly #recover = oneAtATime(async (name: string): Promise<void> => {
    const s = [...this.#streams.values()].find((x) => x.stream.name === name);
    if (s?.ready) await this.#reads.recover(s);
  });

  /** The sink as its background work sees it. */
  #maintenanceHost(): MaintenanceHost {
    const { name, consumerName } = this;
    return maintenanceHost({
      ...{ name, consumerName, settings: this.#settings, control: this.#control, logger: this.#logger },
      hasLogger: this.#main.hasLogger,
      ...{ driver: this.#main.driver, counters: this.#counters, fanout: this.#fanout, readAhead: this.#readAhead },
      ...{ streams: this.#streams, holds: this.#holds, reads: this.#reads, loops: this.#loops },
      ...{ recover: (n: string) => this.#recover(n), fail: (err: PulseError) => this.#fail(err), leaver: () => this.#leaver() },
    });
  }

  /**
   * Also reads `stream` (the group is created on it from `startAt`, default the
   * sink's own). Does nothing when the stream is already read.
   * @throws InvalidArgumentError for options that are not an object or a bad `startAt`, before any Redis call.
   * @throws ClosedError after `close()` (its cause is the error that stopped the sink, if one did).
   * @throws PulseError when Redis could not be reached for it (on a cluster, also when the read
   *   connection of the stream's hash slot could not open): the stream is not read, and a later
   *   `addStream` of it tries again.
   */
  async addStream(stream: Stream<Events>, options?: AddStreamOptions): Promise<void> {
    const start = addStreamStart(options, this.#settings.start);
    if (this.#closed) throw this.#closedError();
    checkSameClient(this.#main, stream);
    checkDeadName(this.#settings.deadLetterStream, stream.name);
    await this.#perStream.run(stream.key, () => addSinkStream(this.#membership(), stream, start));
  }

  /**
   * Stops reading `stream`. When this was the sink's last consumer on it and
   * nothing is pending, the consumer group on that stream is destroyed (said
   * at debug): events it had not read go with it, counted in
   * `counters.lost` and reported, and an instance that reads the stream
   * later starts a new group at its `startAt`. To hand a stream over, add it
   * to the other instance first. Idempotent.
   */
  async removeStream(stream: Stream<Events>): Promise<void> {
    if (this.#closed) return;
    checkSameClient(this.#main, stream);
    await this.#perStream.run(stream.key, () => removeSinkStream(this.#membership(), stream));
  }

  /** What `addStream` and `removeStream` use of the sink. */
  #membership(): MembershipHost {
    const { name, consumerName } = this;
    return {
      ...{ name, consumerName, settings: this.#settings, logger: this.#logger, streams: this.#streams, loops: this.#loops },
      closed: () => this.#closed,
      leaver: () => this.#leaver(),
      wake: (group) => this.#reads.wake(group),
      streamAdded: () => this.#maintenance?.streamAdded(),
      leftBehind: (st) => this.#maintenance?.leftBehind(st),
      acksSettled: () => this.#acks.settled(),
      verifyReads: (streams) => this.#reads.verifyReads(streams),
      countLost: (stream, count, why) => this.#holds.countLost(stream, count, why),
    };
  }

  /**
   * Stops reading and ends every subscription. Events not acked stay pending
   * and go to another consumer after the grace period; `ack` still works.
   * Those read but never handed out keep the delivery count they had before
   * the read. Safe to call many times and concurrently. Bounded when Redis
   * does not answer (stopped, frozen, unreachable): each of its steps waits at
   * most 2 s, and it returns within 10 s.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#closedSignal.abort();
      this.#fanout.endAll();
      const maintenance = this.#maintenance?.stop();
      await this.#loops.stop();
      // A command stuck on a stopped Redis must not hang close(): wait a
      // bounded time, then closing the control connection rejects it.
      const bounded = CLOSE_STEP_MS;
      await within(maintenance ?? Promise.resolve(), bounded);
      await within(this.#acks.settled(), bounded);
      await within(this.#reads.verifyReads([...this.#streams.values()], true), bounded);
      await within(this.#givenBack(), bounded);
      // Streams left behind by removeStream too: this instance leaves the liveness set only if it owns nothing there either.
      const behind = this.#maintenance?.behind() ?? [];
      await leaveAll(this.#leaver(), [...this.#streams.values(), ...behind], this.#logger, new Set(behind));
      this.#control.close();
      await this.#losses.close();
    })();
    return this.#closing;
  }

  /** What leaving a stream's group needs. */
  #leaver(): Leaver {
    const { name, consumerName } = this;
    const destroyed = (s: SinkStream, unread: number) => reportDestroyed(this.#logger, this.#holds, s, unread);
    return { name, consumerName, control: this.#control, graceMs: this.#settings.graceMs, destroyed };
  }

  /** True once `close()` was called (or a fatal error stopped the sink). */
  isClosed(): boolean {
    return this.#closed;
  }

  /** `await using sink = ...` closes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #closedError = (): ClosedError => new ClosedError('sink is closed', this.#failure ? { cause: this.#failure } : undefined);

  /** Ends the subscriptions with `err`, then closes as `close()` does: nothing left open keeps the program alive. */
  #fail(err: PulseError): void {
    // Once: a read loop and the background work may both find Redis refusing; close() says nothing more.
    if (this.#closed) return;
    this.#logger.error({ err: err.message }, 'sink stopped');
    this.#failure = err;
    this.#closed = true;
    this.#closedSignal.abort();
    this.#fanout.endAll(err);
    void this.#losses.close();
    // Not awaited: a read loop or the background work runs this, and close() waits for them.
    this.close().catch((e: unknown) => this.#logger.warn({ err: errorText(e) }, 'closing the stopped sink failed'));
  }
}
