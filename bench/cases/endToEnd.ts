/**
 * End to end: a producer process publishes while a consumer process consumes
 * and acks, both on the same server. The rate counts from the producer's
 * start to the consumer's last ack. Each side keeps its two processes for all
 * its runs.
 */
import type { ClientKind } from '../clients.js';
import { READ_COUNT } from '../consumers.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import type { ConsumerConfig, ProducerConfig, Side } from '../workers/protocol.js';
import { type WorkerProcess, withWorkers } from '../workers/spawn.js';
import { type CaseContext, deadlineFor, READY_MS, throughputResult, uniqueName, withDeadline } from './context.js';

interface Pair {
  readonly side: Side;
  readonly producer: WorkerProcess;
  readonly consumer: WorkerProcess;
}

function configs(ctx: CaseContext, side: Side): [ProducerConfig, ConsumerConfig] {
  const kind: ClientKind = ctx.kind;
  return [
    { role: 'producer', kind, url: ctx.url, side, window: ctx.options.window, payloadBytes: ctx.options.payloadBytes },
    { role: 'consumer', kind, url: ctx.url, side, group: 'bench', progressEvery: 0, sampleMemory: false },
  ];
}

async function endToEndRun(ctx: CaseContext, pair: Pair, events: number): Promise<number> {
  const stream = uniqueName(`e2e-${pair.side}`);
  try {
    pair.consumer.run(stream, events);
    await withDeadline(pair.consumer.next('ready'), READY_MS, `${pair.side} consumer ready`);
    const t0 = performance.now();
    pair.producer.run(stream, events);
    await withDeadline(
      Promise.all([pair.consumer.next('done'), pair.producer.next('done')]),
      deadlineFor(events),
      `end to end (${pair.side})`,
    );
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

/** Library: `add` windows in one process, a sink in another. Baseline: raw pipelined XADD, raw XREADGROUP + XACK. */
export async function endToEndCase(ctx: CaseContext): Promise<ThroughputResult> {
  const { events, runs, window, warmupEvents } = ctx.options;
  const m = await withWorkers([...configs(ctx, 'library'), ...configs(ctx, 'raw')], async (w) => {
    const [libProducer, libConsumer, rawProducer, rawConsumer] = w as [
      WorkerProcess,
      WorkerProcess,
      WorkerProcess,
      WorkerProcess,
    ];
    const library: Pair = { side: 'library', producer: libProducer, consumer: libConsumer };
    const raw: Pair = { side: 'raw', producer: rawProducer, consumer: rawConsumer };
    await withDeadline(Promise.all([libProducer.next('ready'), rawProducer.next('ready')]), READY_MS, 'producers ready');
    await endToEndRun(ctx, library, warmupEvents);
    await endToEndRun(ctx, raw, warmupEvents);
    return alternate(
      runs,
      () => endToEndRun(ctx, library, events),
      () => endToEndRun(ctx, raw, events),
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
