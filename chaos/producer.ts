/** The producer: numbered events added through the library, in the test process. */
import { Redis } from 'ioredis';
import { Stream } from '../src/index.js';
import { pause } from './harness.js';
import type { Oracle } from './oracle.js';

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

/**
 * Publishes numbered events through the library (`Stream.add`) and tells the
 * oracle which adds resolved. A failed add is tried again with the same
 * sequence number (a new event), up to the time limit.
 */
export class Producer {
  readonly stream: Stream;
  readonly #redis: Redis;
  readonly #oracle: Oracle;
  failures = 0;
  published = 0;
  stopRequested = false;
  done: Promise<void> = Promise.resolve();
  lastError = '';

  private constructor(redis: Redis, stream: Stream, oracle: Oracle) {
    this.#redis = redis;
    this.stream = stream;
    this.#oracle = oracle;
  }

  static async connect(url: string, streamName: string, maxLen: number, oracle: Oracle): Promise<Producer> {
    const redis = new Redis(url, {
      lazyConnect: true,
      connectionName: 'chaos:producer',
      maxRetriesPerRequest: 2,
      retryStrategy: (n: number) => Math.min(50 * n, 500),
    });
    redis.on('error', () => {});
    await redis.connect();
    return new Producer(redis, new Stream(streamName, redis, { maxLen }), oracle);
  }

  /** Starts publishing in the background; `done` resolves when it has finished. */
  start(options: ProducerOptions): void {
    this.done = this.#run(options);
  }

  async #run(o: ProducerOptions): Promise<void> {
    const started = Date.now();
    const deadline = started + o.maxMs;
    const pad = o.payloadBytes ? `.${'x'.repeat(o.payloadBytes)}` : '';
    let next = 0;
    const inFlight = new Set<Promise<void>>();
    const publish = async (seq: number): Promise<void> => {
      const name = o.eventName?.(seq) ?? 'ev';
      for (let attempt = 0; attempt < 1000 && Date.now() < deadline + 10_000; attempt++) {
        this.#oracle.attempted.add(seq);
        try {
          const id = await this.stream.add(name, `${seq}${pad}`);
          if (id !== undefined) {
            this.#oracle.publish(id, seq, name);
            this.published++;
          }
          return;
        } catch (err) {
          this.failures++;
          this.lastError = String((err as Error).message);
          await pause(100);
        }
      }
    };
    while (next < o.total && Date.now() < deadline && !this.stopRequested) {
      const due = Math.min(o.total, Math.floor(((Date.now() - started) / 1000) * o.rate) + 1);
      while (next < due && inFlight.size < o.maxInFlight) {
        const p: Promise<void> = publish(next++).finally(() => inFlight.delete(p));
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
    this.#redis.disconnect();
  }
}
