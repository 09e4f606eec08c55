/**
 * The demo: a producer publishes a steady flow of events; a sink with three
 * consumers, each a process of its own, handles them while a reader sees
 * them all; midway one consumer process is killed with SIGKILL while it
 * holds unacked events, and those reach the other two after the ack grace
 * period. At the end every published event must have been handled: lost = 0.
 * Handled counts unique events; events handled again after the kill are
 * counted apart, as duplicates.
 */
import { type Reader, Stream } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import type { RedisTarget } from './connection.js';
import { deadLetterStreamName } from './deadLetters.js';
import { ConsumerProcess, type ConsumerReports } from './demoConsumers.js';
import { ACK_EVERY_MS, DEMO_GRACE_MS, DEMO_SINK } from './demoProtocol.js';
import type { DemoOptions, DemoSnapshot, DemoSummary } from './demoTypes.js';
import { errorMessage } from './errors.js';
import { plural } from './format.js';
import { list, num, record, text } from './replies.js';

export { DEMO_GRACE_MS, DEMO_SINK } from './demoProtocol.js';
export type { ConsumerView, DemoOptions, DemoSnapshot, DemoSummary } from './demoTypes.js';

const CONSUMERS = 3;

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Rates over the last second, from samples of a counter. */
class RateMeter {
  readonly #samples: Array<[number, number]> = [];
  rate(now: number, count: number): number {
    this.#samples.push([now, count]);
    while (this.#samples.length > 2 && now - (this.#samples[1]?.[0] ?? now) >= 1000) this.#samples.shift();
    const first = this.#samples[0];
    if (!first || now - first[0] < 100) return 0;
    return ((count - first[1]) * 1000) / (now - first[0]);
  }
}

class DemoRun {
  readonly #o: DemoOptions;
  readonly #target: RedisTarget;
  readonly #stream: Stream;
  readonly #key: string;
  readonly #deadKey: string;
  readonly #total: number;
  /** When publishing started (reset once the consumer processes are up): the demo's clock. */
  #started = performance.now();
  readonly #published = new Set<string>();
  readonly #handledCount = new Map<string, number>();
  #consumers: ConsumerProcess[] = [];
  readonly #pubMeter = new RateMeter();
  readonly #handleMeter = new RateMeter();
  #reader: Reader | undefined;
  #phase: DemoSnapshot['phase'] = 'publishing';
  #publishFailed = 0;
  #lastPublishError = '';
  #handledTotal = 0;
  #readerReceived = 0;
  #pending = 0;
  #lag: number | null = 0;
  #deadLetters = 0;
  #killed: DemoSummary['killed'] = null;
  #killSettled = false;
  /** Go Pulse's lifecycle record of the stream (`pulse:stream:<name>:lifecycle`). */
  readonly #lifecycleKey: string;
  /** Whether that record existed before the demo (undefined: not known, so it stays). */
  #lifecycleWasThere: boolean | undefined;

  constructor(target: RedisTarget, options: DemoOptions) {
    this.#o = options;
    this.#target = target;
    this.#stream = new Stream(options.streamName, target.client, { maxLen: 0 });
    this.#key = streamKey(options.streamName);
    this.#deadKey = streamKey(deadLetterStreamName(options.streamName));
    this.#lifecycleKey = `${this.#key}:lifecycle`;
    this.#total = Math.max(1, Math.round(options.rate * options.durationS));
  }

  #elapsedS(): number {
    return (performance.now() - this.#started) / 1000;
  }

  #log(message: string): void {
    this.#o.onLog(this.#elapsedS(), message);
  }

  #done(): boolean {
    return this.#phase === 'done';
  }

  #redeliveries(): number {
    return this.#consumers.reduce((sum, c) => sum + c.redelivered, 0);
  }

  async run(): Promise<DemoSummary> {
    try {
      await this.#start();
      let framing = true;
      const frames = (async () => {
        while (framing) {
          await this.#sample();
          if (framing) this.#o.onFrame(this.#snapshot());
          await sleep(this.#o.frameMs);
        }
      })();
      const killer = this.#killMidway();
      await this.#publish();
      this.#phase = 'draining';
      await this.#drain();
      this.#phase = 'done';
      framing = false;
      await Promise.all([frames, killer]);
      await this.#sample();
      const last = this.#snapshot();
      this.#o.onFrame(last);
      return this.#summary(last);
    } finally {
      await this.#cleanup();
    }
  }

  async #start(): Promise<void> {
    // Go Pulse's record of the name, which the library writes and destroy() leaves (README, Go
    // section): removed at the end with the stream, unless it was there before the demo.
    this.#lifecycleWasThere = Number(await this.#target.client.call('EXISTS', this.#lifecycleKey)) === 1;
    const tracing = this.#o.tracing;
    const reports: ConsumerReports = {
      onHandled: (ids) => {
        for (const id of ids) this.#handledCount.set(id, (this.#handledCount.get(id) ?? 0) + 1);
        this.#handledTotal += ids.length;
      },
      onSpans: (spans) => tracing?.add(spans),
    };
    const started = await Promise.allSettled(
      Array.from({ length: CONSUMERS }, (_, i) =>
        ConsumerProcess.start(this.#target, this.#o.streamName, `consumer-${i + 1}`, reports, tracing !== undefined),
      ),
    );
    this.#consumers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.#started = performance.now();
    const reader = await this.#stream.newReader();
    this.#reader = reader;
    const sub = reader.subscribe();
    void (async () => {
      for await (const _ of sub) this.#readerReceived++;
    })().catch(() => {});
  }

  /**
   * The consumer to kill: the one holding the most unacked events, once one
   * holds a fair share of what arrives between two acks (after 2 s, any that holds one).
   */
  async #victim(): Promise<ConsumerProcess | undefined> {
    const share = Math.max(1, Math.floor((this.#o.rate * ACK_EVERY_MS) / 1000 / (2 * CONSUMERS)));
    const until = performance.now() + 2000;
    for (;;) {
      await this.#sample();
      const alive = this.#consumers.filter((c) => c.alive);
      const most = alive.reduce<ConsumerProcess | undefined>((m, c) => (m && m.pending >= c.pending ? m : c), undefined);
      const now = performance.now();
      // A kill of a consumer that holds nothing would show nothing: wait longer for one that holds some.
      const enough = most !== undefined && (most.pending >= share || (now >= until && most.pending > 0));
      if (!most || enough || now >= until + 8000 || this.#o.signal.aborted || this.#done()) return most;
      await sleep(20);
    }
  }

  async #killMidway(): Promise<void> {
    const { signal } = this.#o;
    try {
      await sleep((this.#o.durationS * 1000) / 2, signal);
      if (signal.aborted || this.#done()) return;
      const victim = await this.#victim();
      if (!victim || signal.aborted) return;
      await victim.kill();
      const killedAt = performance.now();
      await this.#sample();
      const held = victim.pending;
      this.#killed = { consumer: victim.label, pid: victim.pid, heldUnacked: held, redeliveredAfterS: null };
      const others = this.#consumers.filter((c) => c !== victim).map((c) => c.label);
      this.#log(`${victim.label} (pid ${victim.pid}) SIGKILLed holding ${plural(held, 'unacked event')}`);
      this.#log(`they stay pending in Redis until the ${DEMO_GRACE_MS / 1000} s ack grace period ends`);
      const before = this.#redeliveries();
      let announced = false;
      while (!signal.aborted && !this.#done()) {
        await sleep(100, signal);
        if (!announced && this.#redeliveries() > before) {
          announced = true;
          this.#log(`redelivery started: ${others.join(' and ')} take them over`);
        }
        if ((announced || held === 0) && victim.pending === 0) {
          const afterS = Number(((performance.now() - killedAt) / 1000).toFixed(1));
          this.#killed = { ...this.#killed, redeliveredAfterS: afterS };
          if (held > 0) this.#log(`all ${plural(held, 'held event')} redelivered, ${afterS} s after the kill`);
          return;
        }
      }
    } finally {
      this.#killSettled = true;
    }
  }

  /** Publishes at a steady rate without waiting for each add. */
  async #publish(): Promise<void> {
    const { rate, signal } = this.#o;
    const inFlight = new Set<Promise<void>>();
    let issued = 0;
    const start = performance.now();
    while (issued < this.#total && !signal.aborted) {
      const due = Math.min(this.#total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (issued < due && inFlight.size < 5000) {
        const seq = issued++;
        const payload = JSON.stringify({ order: seq, amount: (seq * 37) % 1000 });
        const p: Promise<void> = this.#stream
          .add('order.created', payload, { topic: seq % 2 ? 'eu' : 'us' })
          .then(
            (id) => {
              if (id) this.#published.add(id);
            },
            (err: unknown) => {
              this.#publishFailed++;
              this.#lastPublishError = errorMessage(err);
            },
          )
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await sleep(10);
    }
    await Promise.all(inFlight);
    if (this.#publishFailed > 0) {
      this.#log(`${this.#publishFailed} adds failed (not counted as published): ${this.#lastPublishError}`);
    }
  }

  /** Waits (bounded) until the kill played out and every published event was handled, read and acked. */
  async #drain(): Promise<void> {
    const until = performance.now() + Math.max(10_000, 6 * DEMO_GRACE_MS);
    while (!this.#o.signal.aborted && performance.now() < until) {
      if (this.#killSettled && this.#unique() === this.#published.size && this.#readerReceived >= this.#published.size) {
        await this.#sample();
        if (this.#pending === 0) return;
      }
      await sleep(50);
    }
  }

  #unique(): number {
    let n = 0;
    for (const id of this.#published) if (this.#handledCount.has(id)) n++;
    return n;
  }

  /** Reads pending, lag, per-consumer pending and dead letters from Redis. */
  async #sample(): Promise<void> {
    const redis = this.#target.client;
    try {
      const group = list(await redis.call('XINFO', 'GROUPS', this.#key))
        .map(record)
        .find((g) => text(g.name) === DEMO_SINK);
      this.#pending = group ? num(group.pending) : 0;
      const lag = group ? num(group.lag) : 0;
      this.#lag = Number.isNaN(lag) ? null : lag;
      const consumers = list(await redis.call('XINFO', 'CONSUMERS', this.#key, DEMO_SINK)).map(record);
      const byName = new Map(consumers.map((c) => [text(c.name), num(c.pending)]));
      for (const c of this.#consumers) c.pending = byName.get(c.consumerName) ?? 0;
      this.#deadLetters = num(await redis.call('XLEN', this.#deadKey));
    } catch {
      // a missed sample only delays the numbers
    }
  }

  #snapshot(): DemoSnapshot {
    const now = performance.now();
    return {
      elapsedS: this.#elapsedS(),
      phase: this.#phase,
      target: this.#total,
      published: this.#published.size,
      handledUnique: this.#unique(),
      duplicates: this.#handledTotal - this.#handledCount.size,
      readerReceived: this.#readerReceived,
      publishRate: this.#pubMeter.rate(now, this.#published.size),
      handleRate: this.#handleMeter.rate(now, this.#handledCount.size),
      pending: this.#pending,
      lag: this.#lag,
      redeliveries: this.#redeliveries(),
      deadLetters: this.#deadLetters,
      consumers: this.#consumers.map((c) => ({
        label: c.label,
        pid: c.pid,
        alive: c.alive,
        handled: c.handled,
        pending: c.pending,
      })),
    };
  }

  #summary(last: DemoSnapshot): DemoSummary {
    let lost = 0;
    for (const id of this.#published) if (!this.#handledCount.has(id)) lost++;
    const interrupted = this.#o.signal.aborted;
    return {
      stream: this.#o.streamName,
      rate: this.#o.rate,
      durationS: this.#o.durationS,
      elapsedS: Math.round(this.#elapsedS() * 10) / 10,
      interrupted,
      published: this.#published.size,
      publishFailed: this.#publishFailed,
      handledUnique: last.handledUnique,
      handledTotal: this.#handledTotal,
      duplicates: this.#handledTotal - this.#handledCount.size,
      redeliveries: this.#redeliveries(),
      readerReceived: this.#readerReceived,
      deadLetters: this.#deadLetters,
      pendingAtEnd: this.#pending,
      lost,
      killed: this.#killed,
      consumers: this.#consumers.map((c) => ({ consumer: c.label, pid: c.pid, handled: c.handled, killed: c.killed })),
      ok: lost === 0 && !interrupted,
    };
  }

  async #cleanup(): Promise<void> {
    await Promise.allSettled(this.#consumers.map((c) => c.stop()));
    await this.#reader?.close();
    if (this.#o.keep) return;
    await Promise.allSettled([this.#stream.destroy(), this.#target.client.call('DEL', this.#deadKey)]);
    // A name made for one run (or one --stream gave it) left no key behind: not even Go's record.
    if (this.#lifecycleWasThere === false) await this.#target.client.call('DEL', this.#lifecycleKey).catch(() => {});
  }
}

/** Runs the demo against `target` and resolves to its summary; removes the stream unless `keep`. */
export function runDemo(target: RedisTarget, options: DemoOptions): Promise<DemoSummary> {
  return new DemoRun(target, options).run();
}
