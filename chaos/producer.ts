/**
 * The producers: numbered events added through the library, in the test
 * process. Each payload is `<seq>.<k>`: `seq` names the event (unique across
 * producers: producer `p` numbers from `p * SEQ_BASE`), `k` the add that
 * stored it, counted in the order the producer issued its adds, so the
 * stream's order can be checked against the issue order.
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { Stream, type StreamOptions } from '../packages/pulse-streaming/src/index.js';
import { pause } from './harness.js';
import type { Oracle } from './oracle.js';

/** Sequence numbers of producer `p` start at `p * SEQ_BASE`. */
export const SEQ_BASE = 100_000_000;

export interface ProducerOptions {
  /** Events per second. */
  rate: number;
  /** Most events to publish. */
  total: number;
  /** Stop publishing after this long even if `total` is not reached. */
  maxMs: number;
  /** Adds in flight at most. */
  maxInFlight: number;
  /** Payload padding in bytes. */
  payloadBytes?: number;
  /** Event name of an event by its sequence number. */
  eventName?: (seq: number) => string;
}

/** Parses a producer payload (`<seq>.<k>[.<padding>]`); undefined for anything else. */
export function parsePayload(payload: Buffer | string): { seq: number; k: number; producer: number } | undefined {
  const text = (typeof payload === 'string' ? payload : payload.subarray(0, 40).toString('latin1')).split('.');
  if (!/^\d+$/.test(text[0] ?? '') || !/^\d+$/.test(text[1] ?? '')) return undefined;
  const seq = Number(text[0]);
  return { seq, k: Number(text[1]), producer: Math.floor(seq / SEQ_BASE) };
}

/**
 * Publishes numbered events through the library (`Stream.add`) and tells the
 * oracle which adds resolved. A failed add is tried again with the same
 * sequence number (a new add, a new `k`), up to the time limit.
 */
export class Producer {
  readonly stream: Stream;
  readonly index: number;
  readonly #close: () => void;
  readonly #oracle: Oracle;
  failures = 0;
  published = 0;
  stopRequested = false;
  done: Promise<void> = Promise.resolve();
  lastError = '';
  #nextSeq: number;
  #k = 0;

  constructor(stream: Stream, oracle: Oracle, index: number, close: () => void) {
    this.stream = stream;
    this.#oracle = oracle;
    this.index = index;
    this.#close = close;
    this.#nextSeq = index * SEQ_BASE;
  }

  /** A producer on its own connection (ioredis by default, which re-sends unanswered commands after a reconnect). */
  static async connect(
    url: string,
    streamName: string,
    maxLen: number,
    oracle: Oracle,
    o: { index?: number; client?: 'ioredis' | 'node-redis'; stream?: StreamOptions } = {},
  ): Promise<Producer> {
    const index = o.index ?? 0;
    const options: StreamOptions = { maxLen, ...o.stream };
    if (o.client === 'node-redis') {
      const c = createClient({ url, socket: { reconnectStrategy: (n: number) => Math.min(50 * n, 500) } });
      c.on('error', () => {});
      await c.connect();
      return new Producer(new Stream(streamName, c, options), oracle, index, () => c.destroy());
    }
    const redis = new Redis(url, {
      lazyConnect: true,
      connectionName: `chaos:producer:${index}`,
      maxRetriesPerRequest: 2,
      retryStrategy: (n: number) => Math.min(50 * n, 500),
    });
    redis.on('error', () => {});
    await redis.connect();
    return new Producer(new Stream(streamName, redis, options), oracle, index, () => redis.disconnect());
  }

  /** Adds one event (sequence `seq`), retried as a new add after a failure; resolves when it resolved or gave up. */
  async publish(seq: number, name: string, pad: string, deadline: number): Promise<void> {
    for (let attempt = 0; attempt < 1000 && Date.now() < deadline + 10_000; attempt++) {
      this.#oracle.attempted.add(seq);
      const k = this.#k++;
      const rec = { producer: this.index, k, seq } as { producer: number; k: number; seq: number; id?: string; failed?: boolean };
      this.#oracle.adds.set(`${this.index}:${k}`, rec);
      try {
        const id = await this.stream.add(name, `${seq}.${k}${pad}`);
        if (id !== undefined) {
          rec.id = id;
          this.#oracle.publish(id, seq, name);
          this.published++;
        }
        return;
      } catch (err) {
        rec.failed = true;
        this.failures++;
        this.lastError = String((err as Error).message);
        await pause(100);
      }
    }
  }

  /** Issues `n` adds in one tick (they leave merged, as script calls); resolves when all resolved or gave up. */
  burst(n: number, eventName?: (seq: number) => string, maxMs = 60_000): Promise<void> {
    const deadline = Date.now() + maxMs;
    const all: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const seq = this.#nextSeq++;
      all.push(this.publish(seq, eventName?.(seq) ?? 'ev', '', deadline));
    }
    return Promise.all(all).then(() => {});
  }

  /** Starts publishing in the background; `done` resolves when it has finished. */
  start(options: ProducerOptions): void {
    this.done = this.#run(options);
  }

  async #run(o: ProducerOptions): Promise<void> {
    const started = Date.now();
    const deadline = started + o.maxMs;
    const pad = o.payloadBytes ? `.${'x'.repeat(o.payloadBytes)}` : '';
    const first = this.#nextSeq;
    const inFlight = new Set<Promise<void>>();
    const issued = () => this.#nextSeq - first;
    while (issued() < o.total && Date.now() < deadline && !this.stopRequested) {
      const due = Math.min(o.total, Math.floor(((Date.now() - started) / 1000) * o.rate) + 1);
      while (issued() < due && inFlight.size < o.maxInFlight) {
        const seq = this.#nextSeq++;
        const p: Promise<void> = this.publish(seq, o.eventName?.(seq) ?? 'ev', pad, deadline).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (inFlight.size >= o.maxInFlight) await Promise.race(inFlight);
      else await pause(5);
    }
    await Promise.all(inFlight);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.done;
  }

  close(): void {
    this.#close();
  }
}
