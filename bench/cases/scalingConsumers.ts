/**
 * Consumers of one sink: N sink instances of one group on one stream, all
 * reading at once and acking each event, against N raw XREADGROUP COUNT 1000
 * + XACK loops of one group, each on a connection of its own. Timed until
 * every event is consumed and its ack answered; each point also records the
 * share of the events each consumer got.
 */
import { type Sink, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type BenchClient, connectClient } from '../clients.js';
import { READ_COUNT } from '../consumers.js';
import { fill, replyEntries, streamKey } from '../rawStreams.js';
import type { ScalingPoint, ScalingResult } from '../results.js';
import { flush } from '../server.js';
import { measure } from './consume.js';
import { type CaseContext, uniqueName } from './context.js';
import { GROUP, measurePoint } from './scalingPoint.js';

const CONSUMER_COUNTS = [1, 2, 4, 8, 16] as const;

/** Short blocks in the raw loops: a loop whose peers took the last events must notice soon that all are done. */
const RAW_BLOCK_MS = '50';

/** Shares of the last run of each side, by consumer. */
interface Shares {
  library: number[];
  baseline: number[];
}

async function filled(ctx: CaseContext, prefix: string, events: number): Promise<string> {
  const name = uniqueName(prefix);
  await fill(ctx.client, streamKey(name), events, ctx.payload, ctx.options.window);
  return name;
}

async function librarySinks(ctx: CaseContext, count: number, events: number, shares: Shares): Promise<number> {
  const name = await filled(ctx, 'scale-consumers', events);
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const sinks: Sink[] = [];
  try {
    for (let i = 0; i < count; i++) sinks.push(await stream.newSink(GROUP, { startAt: 'oldest', maxPolled: READ_COUNT }));
    const got = sinks.map(() => 0);
    const lastAcks: Array<Promise<void> | undefined> = sinks.map(() => undefined);
    let total = 0;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    let consumers: Promise<unknown> | undefined;
    const rate = await measure(events, 'library sinks', async () => {
      consumers = Promise.all(
        sinks.map(async (sink, i) => {
          for await (const ev of sink) {
            const ack = ev.ack();
            if (ack !== lastAcks[i]) {
              lastAcks[i] = ack;
              ack.catch(() => {});
            }
            got[i] = (got[i] ?? 0) + 1;
            if (++total >= events) {
              allDone();
              break;
            }
          }
        }),
      );
      // Timed until every event is handed out and every ack answered; the closes are not timed.
      await Promise.race([done, consumers]);
      await Promise.all(lastAcks);
      if (total < events) throw new Error(`sinks ended after ${total} of ${events} events`);
    });
    // The others wait in a blocking read: closing ends their iteration.
    await Promise.all(sinks.map((s) => s.close()));
    await consumers;
    shares.library = got.map((n) => n / events);
    return rate;
  } finally {
    await Promise.all(sinks.map((s) => s.close()));
    await flush(ctx.client);
  }
}

async function rawConsumers(ctx: CaseContext, count: number, events: number, shares: Shares): Promise<number> {
  const key = streamKey(await filled(ctx, 'scale-consumers-raw', events));
  await ctx.client.send(['XGROUP', 'CREATE', key, GROUP, '0']);
  const conns: BenchClient[] = [];
  try {
    for (let i = 0; i < count; i++) conns.push(await connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader'));
    const got = conns.map(() => 0);
    const lastAcks: Array<Promise<unknown> | undefined> = conns.map(() => undefined);
    let total = 0;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    let loops: Promise<unknown> | undefined;
    const rate = await measure(events, 'raw group consumers', async () => {
      loops = Promise.all(
        conns.map(async (conn, i) => {
          const read = [
            'XREADGROUP',
            'GROUP',
            GROUP,
            `raw${i}`,
            'COUNT',
            String(READ_COUNT),
            'BLOCK',
            RAW_BLOCK_MS,
            'STREAMS',
            key,
            '>',
          ];
          while (total < events) {
            const entries = replyEntries(await conn.send(read));
            if (entries.length === 0) continue;
            const ack = ctx.client.send(['XACK', key, GROUP, ...entries.map((e) => e.id)]);
            ack.catch(() => {});
            lastAcks[i] = ack;
            got[i] = (got[i] ?? 0) + entries.length;
            total += entries.length;
            if (total >= events) allDone();
          }
        }),
      );
      // Timed until every event is read and every ack answered: loops still blocked end within RAW_BLOCK_MS, untimed.
      await Promise.race([done, loops]);
      await Promise.all(lastAcks);
    });
    await loops;
    shares.baseline = got.map((n) => n / events);
    return rate;
  } finally {
    for (const c of conns) c.close();
    await flush(ctx.client);
  }
}

/** Consumers of one sink: 1 to 16 sink instances against as many raw group consumers. */
export async function consumersCurve(ctx: CaseContext): Promise<ScalingResult> {
  const { events, warmupEvents } = ctx.options;
  const warm: Shares = { library: [], baseline: [] };
  await librarySinks(ctx, 2, warmupEvents, warm);
  await rawConsumers(ctx, 2, warmupEvents, warm);
  const points: ScalingPoint[] = [];
  for (const n of CONSUMER_COUNTS) {
    const shares: Shares = { library: [], baseline: [] };
    const p = await measurePoint(
      ctx,
      n,
      events,
      () => librarySinks(ctx, n, events, shares),
      () => rawConsumers(ctx, n, events, shares),
    );
    points.push({ ...p, shares });
  }
  return {
    type: 'scaling',
    client: ctx.kind,
    curve: 'consumers',
    title: 'consumers of one sink, ack each event',
    xLabel: 'consumers (sink instances of one group)',
    unit: 'events/s',
    libraryName: `N sink instances, maxPolled ${READ_COUNT}`,
    baselineName: `N raw XREADGROUP COUNT ${READ_COUNT} + XACK loops, one connection each`,
    points,
  };
}
