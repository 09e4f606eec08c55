/**
 * Consumer process: for each run, a library sink or a raw consumer group
 * created at the end of the run's stream. Says `ready` once events added from
 * then on will reach it, consumes the run's events and says `done` (with its
 * memory when sampling).
 */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { type BenchClient, connectClient } from '../clients.js';
import { type ConsumeHooks, consumeRawGroup, consumeWithSink, READ_COUNT } from '../consumers.js';
import { MemorySampler } from '../memorySampler.js';
import { streamKey } from '../rawStreams.js';
import { serveWorker, tell } from './child.js';
import type { ConsumerConfig, RunMessage } from './protocol.js';

/** Share of the events consumed before the memory base is taken. */
const WARMUP_SHARE = 0.1;

function hooksFor(config: ConsumerConfig, events: number, sampler: MemorySampler | undefined): ConsumeHooks {
  if (!sampler && config.progressEvery === 0) return {};
  const warmup = Math.ceil(events * WARMUP_SHARE);
  let reported = 0;
  return {
    onProgress: (consumed) => {
      if (sampler && !sampler.started && consumed >= warmup) sampler.markBase();
      if (config.progressEvery > 0 && consumed - reported >= config.progressEvery) {
        reported = consumed;
        void tell({ type: 'progress', consumed });
      }
    },
  };
}

/** Milliseconds from `ready` to the last ack. */
async function runWithLibrary(
  client: BenchClient,
  config: ConsumerConfig,
  run: RunMessage,
  hooks: ConsumeHooks,
): Promise<number> {
  const stream = new Stream(run.stream, client.redis, { maxLen: 0 });
  const sink = await stream.newSink(config.group, { startAt: 'newest', maxPolled: READ_COUNT });
  try {
    await tell({ type: 'ready' });
    const t0 = performance.now();
    await consumeWithSink(sink, run.events, hooks);
    return performance.now() - t0;
  } finally {
    await sink.close();
  }
}

async function runRaw(
  client: BenchClient,
  reader: BenchClient,
  config: ConsumerConfig,
  run: RunMessage,
  hooks: ConsumeHooks,
): Promise<number> {
  const key = streamKey(run.stream);
  await client.send(['XGROUP', 'CREATE', key, config.group, '$', 'MKSTREAM']);
  await tell({ type: 'ready' });
  const t0 = performance.now();
  await consumeRawGroup({ reader, acker: client, key, group: config.group, consumer: 'raw' }, run.events, hooks);
  return performance.now() - t0;
}

serveWorker(async (config) => {
  if (config.role !== 'consumer') throw new Error('consumer worker started with a producer config');
  const client = await connectClient(config.kind, config.url, 'bench:consumer');
  // The raw side reads on a connection of its own, as the library does;
  // opened at its first run, so that a library-only worker has none.
  let reader: BenchClient | undefined;
  return {
    run: async (run) => {
      const sampler = config.sampleMemory ? new MemorySampler() : undefined;
      const hooks = hooksFor(config, run.events, sampler);
      let elapsedMs: number;
      if (run.side === 'raw') {
        reader ??= await connectClient(config.kind, config.url, 'bench:raw-consumer', 'reader');
        elapsedMs = await runRaw(client, reader, config, run, hooks);
      } else {
        elapsedMs = await runWithLibrary(client, config, run, hooks);
      }
      const memory = sampler?.finish(run.events, elapsedMs);
      await tell(memory ? { type: 'done', elapsedMs, memory } : { type: 'done', elapsedMs });
    },
    close: async () => {
      reader?.close();
      client.close();
    },
  };
});
