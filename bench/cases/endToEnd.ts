/**
 * End to end: a producer process publishes while a consumer process consumes
 * and acks, both on the same server. The rate counts from the producer's
 * start to the consumer's last ack. The same two processes run both sides,
 * alternating (see `ProducerConfig` for why).
 */
import type { ClientKind } from '../clients.js';
import { READ_COUNT } from '../consumers.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import type { ConsumerConfig, ProducerConfig, Side } from '../workers/protocol.js';
import { type WorkerProcess, withWorkers } from '../workers/spawn.js';
import { type CaseContext, deadlineFor, READY_MS, throughputResult, uniqueName, withDeadline } from './context.js';

/** One producer and one consumer process, which run both sides in turn. */
interface Pair {
  readonly producer: WorkerProcess;
  readonly consumer: WorkerProcess;
}

function configs(ctx: CaseContext): [ProducerConfig, ConsumerConfig] {
  const kind: ClientKind = ctx.kind;
  return [
    { role: 'producer', kind, url: ctx.url, window: ctx.options.window, payloadBytes: ctx.options.payloadBytes },
    { role: 'consumer', kind, url: ctx.url, group: 'bench', progressEvery: 0, sampleMemory: false },
  ];
}

async function endToEndRun(ctx: CaseContext, pair: Pair, side: Side, events: number): Promise<number> {
  const stream = uniqueName(`e2e-${side}`);
  try {
    pair.consumer.run(side, stream, events);
    await withDeadline(pair.consumer.next('ready'), READY_MS, `${side} consumer ready`);
    const t0 = performance.now();
    pair.producer.run(side, stream, events);
    await withDeadline(
      Promise.all([pair.consumer.next('done'), pair.producer.next('done')]),
      deadlineFor(events),
      `end to end (${side})`,
    );
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

/** Library: `add` windows in one process, a sink in another. Baseline: raw pipelined XADD, raw XREADGROUP + XACK. */
export async function endToEndCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { events, runs, window, warmupEvents } = ctx.options;
  const m = await withWorkers(configs(ctx), async (w) => {
    const [producer, consumer] = w as [WorkerProcess, WorkerProcess];
    const pair: Pair = { producer, consumer };
    await withDeadline(producer.next('ready'), READY_MS, 'producer ready');
    await endToEndRun(ctx, pair, 'library', warmupEvents);
    await endToEndRun(ctx, pair, 'raw', warmupEvents);
    return alternate(
      runs,
      () => endToEndRun(ctx, pair, 'library', events),
      () => endToEndRun(ctx, pair, 'raw', events),
    );
  });
  return throughputResult(
    ctx,
    {
      case: 'e2e',
      title: 'end to end, producer + sink processes',
      baselineName: `raw pipelined XADD (${window}) process + raw XREADGROUP COUNT ${READ_COUNT} + XACK process`,
      events,
    },
    m,
  );
}
