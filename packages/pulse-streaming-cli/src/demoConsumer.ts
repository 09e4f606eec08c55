/**
 * One consumer of the demo sink: a Sink instance on its own Redis client,
 * whose handler records each event and acks in batches (as a real worker
 * would), and which can be killed abruptly: it stops handling and acking,
 * and its sink is closed without acking what it holds.
 */

import { type Sink, type SinkCounters, type SinkEvent, Stream } from 'pulse-streaming';
import type { CliRedis } from './clients.js';
import type { RedisTarget } from './connection.js';

/** The demo's sink name. */
export const DEMO_SINK = 'demo-workers';
/** The demo's ack grace period: a killed consumer's events are redelivered after it. */
export const DEMO_GRACE_MS = 1500;
/** How often a consumer acks what it handled. */
export const ACK_EVERY_MS = 500;

/** What a consumer reports to the demo. */
export interface ConsumerHooks {
  /** An event was handled (first delivery or redelivery). */
  onHandled(event: SinkEvent): void;
  /** Called at each ack time; returning true means the consumer is being killed and must not ack. */
  killNow(consumer: DemoConsumer): boolean;
}

/** A consumer of the demo sink that handles, acks in batches, and can be killed. */
export class DemoConsumer {
  readonly label: string;
  /** Events handed to the handler, redeliveries included. */
  handled = 0;
  /** Entries Redis counts as pending for this consumer (set by the demo's sampling). */
  pending = 0;
  #alive = true;
  #unacked: SinkEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #final: SinkCounters | undefined;

  private constructor(
    label: string,
    private readonly client: CliRedis,
    private readonly sink: Sink,
  ) {
    this.label = label;
  }

  /** Opens a client, creates the sink instance and starts handling. */
  static async start(target: RedisTarget, streamName: string, index: number, hooks: ConsumerHooks): Promise<DemoConsumer> {
    const label = `consumer-${index + 1}`;
    const client = await target.newClient(`pulse-demo-${label}`);
    let sink: Sink;
    try {
      sink = await new Stream(streamName, client, { maxLen: 0 }).newSink(DEMO_SINK, { ackGracePeriodMs: DEMO_GRACE_MS });
    } catch (err) {
      client.disconnect();
      throw err;
    }
    const c = new DemoConsumer(label, client, sink);
    c.#run(hooks);
    return c;
  }

  #run(hooks: ConsumerHooks): void {
    const sub = this.sink.subscribe();
    void (async () => {
      for await (const ev of sub) {
        if (!this.#alive) break;
        hooks.onHandled(ev);
        this.handled++;
        this.#unacked.push(ev);
      }
    })().catch(() => {});
    this.#timer = setInterval(() => {
      if (!this.#alive || hooks.killNow(this)) return;
      this.#flush();
    }, ACK_EVERY_MS);
  }

  #flush(): void {
    if (this.#unacked.length === 0) return;
    const batch = this.#unacked;
    this.#unacked = [];
    this.sink.ack(...batch).catch(() => {}); // an event not acked is redelivered: nothing is lost
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Events handled and not acked yet. */
  get unacked(): number {
    return this.#unacked.length;
  }

  /** The Redis consumer name of the sink instance. */
  get consumerName(): string {
    return this.sink.consumerName;
  }

  /** `sink.counters.redelivered`, kept after a kill. */
  get redelivered(): number {
    return (this.#final ?? this.sink.counters).redelivered;
  }

  /** Dies abruptly: stops handling and acking, closes the sink without acking, drops its connection. */
  async kill(): Promise<void> {
    if (!this.#alive) return;
    this.#alive = false;
    clearInterval(this.#timer);
    this.#unacked = [];
    await this.sink.close();
    this.#final = this.sink.counters;
    this.client.disconnect();
  }

  /** Acks what it handled, closes the sink and the client. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#alive) {
      this.#alive = false;
      this.#flush();
      await this.sink.close();
      this.#final = this.sink.counters;
    }
    this.client.disconnect();
  }
}
