/**
 * The library against BullMQ, the usual job queue on Redis, for the same
 * work: publishing with many calls in flight, and processing with 50
 * handlers at a time. BullMQ gets a client of the same kind as the library.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { publishWithLibrary } from '../producers.js';
import { EVENT_NAME, fill, streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

const CONCURRENCY = 50;

interface BullConnection {
  readonly connection: object;
  close(): Promise<void>;
}

/** A client of the context's kind for BullMQ (ioredis must have `maxRetriesPerRequest: null` for workers). */
async function bullConnection(ctx: CaseContext): Promise<BullConnection> {
  if (ctx.kind === 'ioredis') {
    const redis = new Redis(ctx.url, { maxRetriesPerRequest: null, lazyConnect: true });
    redis.on('error', () => {});
    await redis.connect();
    return {
      connection: redis,
      close: async () => {
        redis.disconnect();
      },
    };
  }
  const redis = createClient({ url: ctx.url });
  redis.on('error', () => {});
  await redis.connect();
  return {
    connection: redis,
    close: async () => {
      redis.destroy();
    },
  };
}

async function withBull<T>(ctx: CaseContext, fn: (queue: Queue, conn: BullConnection) => Promise<T>): Promise<T> {
  const conn = await bullConnection(ctx);
  let queue: Queue | undefined;
  try {
    // BullMQ queue names cannot contain ':'.
    queue = new Queue(uniqueName('bullmq').replaceAll(':', '-'), {
      connection: conn.connection,
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    });
    await queue.waitUntilReady();
    return await fn(queue, conn);
  } finally {
    await queue?.close();
    await conn.close();
    await flush(ctx.client);
  }
}

function jobData(ctx: CaseContext): { p: string } {
  return { p: ctx.payload.toString('latin1') };
}

async function bullPublishRun(ctx: CaseContext, events: number): Promise<number> {
  const data = jobData(ctx);
  return withBull(ctx, async (queue) => {
    const t0 = performance.now();
    await withDeadline(
      (async () => {
        for (let sent = 0; sent < events; sent += ctx.options.window) {
          const size = Math.min(ctx.options.window, events - sent);
          await Promise.all(Array.from({ length: size }, () => queue.add(EVENT_NAME, data)));
        }
      })(),
      deadlineFor(events),
      'BullMQ Queue.add',
    );
    return rate(events, performance.now() - t0);
  });
}

async function libraryPublishRun(ctx: CaseContext, events: number): Promise<number> {
  const stream = new Stream(uniqueName('peer-publish'), ctx.client.redis, { maxLen: 0 });
  try {
    const t0 = performance.now();
    await withDeadline(
      publishWithLibrary(stream, events, ctx.payload, ctx.options.window),
      deadlineFor(events),
      'library publish',
    );
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

async function bullProcessRun(ctx: CaseContext, events: number): Promise<number> {
  const data = jobData(ctx);
  return withBull(ctx, async (queue, conn) => {
    for (let sent = 0; sent < events; sent += ctx.options.window) {
      const size = Math.min(ctx.options.window, events - sent);
      await queue.addBulk(Array.from({ length: size }, () => ({ name: EVENT_NAME, data })));
    }
    const worker = new Worker(queue.name, async () => {}, {
      connection: conn.connection,
      concurrency: CONCURRENCY,
      autorun: false,
    });
    let completed = 0;
    const allDone = new Promise<void>((resolve, reject) => {
      worker.on('completed', () => {
        if (++completed === events) resolve();
      });
      worker.on('failed', (_job, err) => reject(err));
      worker.on('error', reject);
    });
    try {
      const t0 = performance.now();
      void worker.run();
      await withDeadline(allDone, deadlineFor(events), 'BullMQ Worker');
      return rate(events, performance.now() - t0);
    } finally {
      await worker.close();
    }
  });
}

async function libraryProcessRun(ctx: CaseContext, events: number): Promise<number> {
  const name = uniqueName('peer-process');
  await fill(ctx.client, streamKey(name), events, ctx.payload, ctx.options.window);
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const sink = await stream.newSink('bench', { startAt: 'oldest' });
  const stop = new AbortController();
  let handled = 0;
  try {
    const t0 = performance.now();
    await withDeadline(
      sink.process(
        async () => {
          if (++handled === events) stop.abort();
        },
        { concurrency: CONCURRENCY, signal: stop.signal },
      ),
      deadlineFor(events),
      'library sink.process',
    );
    if (handled < events) throw new Error(`sink.process handled ${handled} of ${events} events`);
    return rate(events, performance.now() - t0);
  } finally {
    await sink.close();
    await flush(ctx.client);
  }
}

/** Library `add` vs BullMQ `Queue.add`, both with windows in flight; `sink.process` vs `Worker`, both with concurrency 50. */
export async function peerCases(ctx: CaseContext): Promise<ThroughputResult[]> {
  const { peerEvents: events, runs, window } = ctx.options;
  const warmup = Math.min(events, ctx.options.warmupEvents);
  await libraryPublishRun(ctx, warmup);
  await bullPublishRun(ctx, warmup);
  const publish = await alternate(
    runs,
    () => libraryPublishRun(ctx, events),
    () => bullPublishRun(ctx, events),
  );
  await libraryProcessRun(ctx, warmup);
  await bullProcessRun(ctx, warmup);
  const processing = await alternate(
    runs,
    () => libraryProcessRun(ctx, events),
    () => bullProcessRun(ctx, events),
  );
  return [
    throughputResult(
      ctx,
      {
        case: 'peer-publish',
        title: `peer: publish, ${window} in flight`,
        baselineName: `BullMQ Queue.add, ${window} in flight`,
        events,
      },
      publish,
    ),
    throughputResult(
      ctx,
      {
        case: 'peer-process',
        title: `peer: process, concurrency ${CONCURRENCY}`,
        baselineName: `BullMQ Worker, concurrency ${CONCURRENCY}`,
        events,
      },
      processing,
    ),
  ];
}
