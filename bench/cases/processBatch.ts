/**
 * `sink.processBatch()` against `sink.process()`, both at concurrency 1, on
 * a stream that already holds the events (100-byte payloads by default): the
 * handler calls, acks and in-progress bookkeeping that batching saves.
 */
import { type Sink, Stream } from '../../packages/pulse-streaming/src/index.js';
import { READ_COUNT } from '../consumers.js';
import { fill, streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

const SINK = 'bench';

/** Events per second of `consume` on a sink of a fresh stream holding `events` events; the server is emptied after. */
async function measure(
  ctx: CaseContext,
  events: number,
  what: string,
  consume: (sink: Sink, handled: (n: number) => void, signal: AbortSignal) => Promise<void>,
): Promise<number> {
  const name = uniqueName(what);
  await fill(ctx.client, streamKey(name), events, ctx.payload, ctx.options.window);
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const sink = await stream.newSink(SINK, { startAt: 'oldest', maxPolled: READ_COUNT });
  try {
    const ac = new AbortController();
    let count = 0;
    let allHandled: () => void = () => {};
    const done = new Promise<void>((r) => (allHandled = r));
    const t0 = performance.now();
    const run = consume(
      sink,
      (n) => {
        count += n;
        if (count >= events) allHandled();
      },
      ac.signal,
    );
    // Every event handled, then every ack done (process and processBatch settle them before resolving).
    await withDeadline(
      Promise.race([done, run.then(() => Promise.reject(new Error(`${what} ended after ${count} events`)))]),
      deadlineFor(events),
      what,
    );
    ac.abort();
    await run;
    const elapsed = performance.now() - t0;
    return rate(events, elapsed);
  } finally {
    await sink.close();
    await flush(ctx.client);
  }
}

/** What the handlers do with their events. */
type Work = 'write' | 'none';

/**
 * The handlers of both sides. `write`: one Redis command per handler call
 * (INCRBY of a counter by the events it got), awaited, as a handler that
 * stores its results does; `none`: nothing but counting, the library's own
 * cost alone.
 */
function handlers(ctx: CaseContext, work: Work, handled: (n: number) => void) {
  const counter = uniqueName('handled');
  const write = (n: number): Promise<unknown> | undefined =>
    work === 'write' ? ctx.client.send(['INCRBY', counter, String(n)]) : undefined;
  return {
    one: async (): Promise<void> => {
      await write(1);
      handled(1);
    },
    batch: async (events: readonly unknown[]): Promise<void> => {
      await write(events.length);
      handled(events.length);
    },
  };
}

const withProcessBatch = (ctx: CaseContext, work: Work, events: number) =>
  measure(ctx, events, 'process-batch', (sink, handled, signal) =>
    sink.processBatch(handlers(ctx, work, handled).batch, { signal }),
  );

const withProcess = (ctx: CaseContext, work: Work, events: number) =>
  measure(ctx, events, 'process', (sink, handled, signal) => sink.process(handlers(ctx, work, handled).one, { signal }));

/**
 * Library: `processBatch()` (maxBatch 100, maxWaitMs 20). Baseline:
 * `process()`. Both at concurrency 1, with a handler that writes to Redis
 * once per call (the target), and with one that does nothing.
 */
export async function processBatchCases(ctx: CaseContext): Promise<ThroughputResult[]> {
  const { events, runs, warmupEvents } = ctx.options;
  const out: ThroughputResult[] = [];
  const cases = [
    { case: 'process-batch' as const, work: 'write' as const, what: 'a handler awaiting one INCRBY per call' },
    { case: 'process-batch-noop' as const, work: 'none' as const, what: 'a handler that does nothing' },
  ];
  for (const c of cases) {
    await withProcessBatch(ctx, c.work, warmupEvents);
    await withProcess(ctx, c.work, warmupEvents);
    const m = await alternate(
      runs,
      () => withProcessBatch(ctx, c.work, events),
      () => withProcess(ctx, c.work, events),
    );
    out.push(
      throughputResult(
        ctx,
        {
          case: c.case,
          title: `processBatch() (maxBatch 100), concurrency 1, ${ctx.payload.length}-byte events, ${c.what}`,
          baselineName: 'process(), concurrency 1, same handler',
          events,
        },
        m,
      ),
    );
  }
  return out;
}
