/**
 * Memory: `memoryEvents` events pass through a consumer process (a library
 * sink, or the raw loop for reference) while this process produces them with
 * raw pipelined XADD, never more than `MAX_BACKLOG` ahead of the consumer.
 * The consumer samples its own RSS and heap.
 */
import type { Command } from '../clients.js';
import { EVENT_NAME, streamKey } from '../rawStreams.js';
import type { MemoryReport, MemoryResult } from '../results.js';
import { flush } from '../server.js';
import type { ConsumerConfig, Side } from '../workers/protocol.js';
import { withWorkers } from '../workers/spawn.js';
import { type CaseContext, deadlineFor, READY_MS, uniqueName, withDeadline } from './context.js';

/** Most events produced and not yet consumed. */
const MAX_BACKLOG = 100_000;
/** The consumer reports its count this often. */
const PROGRESS_EVERY = 10_000;

async function memoryRun(ctx: CaseContext, side: Side, events: number): Promise<MemoryReport> {
  const { client, options } = ctx;
  const stream = uniqueName(`memory-${side}`);
  const key = streamKey(stream);
  const config: ConsumerConfig = {
    role: 'consumer',
    kind: ctx.kind,
    url: ctx.url,
    group: 'bench',
    progressEvery: PROGRESS_EVERY,
    sampleMemory: true,
  };
  // Trimmed well behind the consumer, so that the server's memory stays flat over a long run.
  const add: Command = ['XADD', key, 'MAXLEN', '~', String(2 * MAX_BACKLOG), '*', 'n', EVENT_NAME, 'p', ctx.payload];
  try {
    return await withWorkers([config], async ([consumer]) => {
      if (!consumer) throw new Error('no consumer');
      let consumed = 0;
      consumer.onProgress = (n) => {
        consumed = n;
      };
      consumer.run(side, stream, events);
      await withDeadline(consumer.next('ready'), READY_MS, 'consumer ready');
      const produce = async (): Promise<void> => {
        for (let produced = 0; produced < events; ) {
          while (produced - consumed >= MAX_BACKLOG) await consumer.next('progress');
          const size = Math.min(options.window, events - produced);
          await client.pipeline(Array.from({ length: size }, () => add));
          produced += size;
        }
      };
      const done = await withDeadline(
        produce().then(() => consumer.next('done')),
        deadlineFor(events),
        `memory (${side})`,
      );
      if (!done.memory) throw new Error('the consumer sent no memory report');
      return done.memory;
    });
  } finally {
    await flush(client);
  }
}

/** One run per side: memory is a level, not a rate. */
export async function memoryCase(ctx: CaseContext): Promise<MemoryResult> {
  const events = ctx.options.memoryEvents;
  const library = await memoryRun(ctx, 'library', events);
  const baseline = await memoryRun(ctx, 'raw', events);
  return { type: 'memory', client: ctx.kind, events, library, baseline };
}
