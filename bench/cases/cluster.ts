/**
 * Redis Cluster: publishing over several streams and one sink consuming them,
 * on a local cluster (3 masters + 3 replicas) and on the single private
 * server, with the library and with raw commands on the same client. The
 * streams' keys fall in distinct slots owned by every master, so the cluster
 * spreads them and the sink reads each slot on its own connection.
 */
import { type Sink, Stream } from '../../packages/pulse-streaming/src/index.js';
import { slotOf } from '../../packages/pulse-streaming/src/internal/slot.js';
import { type BenchClient, connectClient, connectClusterClient } from '../clients.js';
import { consumeRawGroup, consumeWithSink, READ_COUNT } from '../consumers.js';
import { publishSpreadRaw, publishSpreadWithLibrary } from '../producers.js';
import { fill, streamKey } from '../rawStreams.js';
import type { ClusterCase, ClusterResult, TopologyRates } from '../results.js';
import { flush, flushCluster, type RedisCluster, startCluster, stopCluster } from '../server.js';
import { rate, rotate, type Summary } from '../stats.js';
import { measure } from './consume.js';
import { type CaseContext, deadlineFor, withDeadline } from './context.js';

const GROUP = 'bench';

/** Where a measurement runs: the single private server or the cluster. */
interface Topology {
  /** The user's client: handed to `new Stream`, and sends the raw XADD and XACK. */
  readonly client: BenchClient;
  /** A dedicated connection for the raw blocking reads of `key`, to the node that serves it. */
  readConnection(key: string): Promise<BenchClient>;
  /** Empties every master. */
  flush(): Promise<void>;
}

/** Candidate names tried when looking for streams in distinct slots of every master. */
const MAX_CANDIDATES = 10_000;

/**
 * `count` stream names whose keys fall in distinct slots, as evenly as
 * possible over the `masters` masters (`count / masters` on each).
 */
async function spreadNames(cluster: RedisCluster, masters: number, count: number): Promise<{ names: string[]; slots: number[] }> {
  const perMaster = Math.ceil(count / masters);
  const taken = new Map<number, number>();
  const names: string[] = [];
  const slots: number[] = [];
  for (let i = 0; names.length < count; i++) {
    if (i >= MAX_CANDIDATES) throw new Error(`no ${count} stream names in distinct slots of ${masters} masters`);
    const name = `bench:cluster:${process.pid}:${i}`;
    const slot = slotOf(streamKey(name));
    if (slots.includes(slot)) continue;
    const master = (await cluster.masterOf(slot)).port;
    const onMaster = taken.get(master) ?? 0;
    if (onMaster >= perMaster) continue;
    taken.set(master, onMaster + 1);
    names.push(name);
    slots.push(slot);
  }
  return { names, slots };
}

/** The port of the master of each slot, to notice a failover during the case. */
function mastersOf(cluster: RedisCluster, slots: readonly number[]): Promise<number[]> {
  return Promise.all(slots.map(async (slot) => (await cluster.masterOf(slot)).port));
}

/** Events of stream `i` when `events` are spread round-robin over `streams` streams. */
function shareOf(events: number, streams: number, i: number): number {
  return Math.floor(events / streams) + (i < events % streams ? 1 : 0);
}

/** `library`: `stream.add` spread over the streams; else raw XADD, concurrent, on the same client. */
async function publishRun(
  ctx: CaseContext,
  topo: Topology,
  names: readonly string[],
  events: number,
  library: boolean,
): Promise<number> {
  const { window } = ctx.options;
  try {
    const t0 = performance.now();
    const work = library
      ? publishSpreadWithLibrary(
          names.map((n) => new Stream(n, topo.client.redis, { maxLen: 0 })),
          events,
          ctx.payload,
          window,
        )
      : publishSpreadRaw(topo.client, names.map(streamKey), events, ctx.payload, window);
    await withDeadline(work, deadlineFor(events), library ? 'library publish' : 'raw publish');
    return rate(events, performance.now() - t0);
  } finally {
    await topo.flush();
  }
}

/** Fills each stream with its share of `events` (not timed). */
async function fillAll(ctx: CaseContext, topo: Topology, keys: readonly string[], events: number): Promise<void> {
  for (const [i, key] of keys.entries()) {
    await fill(topo.client, key, shareOf(events, keys.length, i), ctx.payload, ctx.options.window);
  }
}

/** One sink reading every stream (created on the first, the others added), `ev.ack()` per event. */
async function sinkRun(ctx: CaseContext, topo: Topology, names: readonly string[], events: number): Promise<number> {
  try {
    await fillAll(ctx, topo, names.map(streamKey), events);
    const [first, ...rest] = names.map((n) => new Stream(n, topo.client.redis, { maxLen: 0 }));
    if (!first) throw new Error('no streams');
    const sink: Sink = await first.newSink(GROUP, { startAt: 'oldest', maxPolled: READ_COUNT });
    try {
      for (const s of rest) await sink.addStream(s);
      return await measure(events, 'library sink', () => consumeWithSink(sink, events));
    } finally {
      await sink.close();
    }
  } finally {
    await topo.flush();
  }
}

/** One raw XREADGROUP + XACK loop per stream, each reading on its own connection, all at once. */
async function rawGroupRun(ctx: CaseContext, topo: Topology, names: readonly string[], events: number): Promise<number> {
  const keys = names.map(streamKey);
  const readers: BenchClient[] = [];
  try {
    await fillAll(ctx, topo, keys, events);
    for (const key of keys) {
      const reader = await topo.readConnection(key);
      readers.push(reader);
      await reader.send(['XGROUP', 'CREATE', key, GROUP, '0']);
    }
    return await measure(events, 'raw group consumers', async () => {
      await Promise.all(
        keys.map((key, i) =>
          consumeRawGroup(
            { reader: readers[i] as BenchClient, acker: topo.client, key, group: GROUP, consumer: 'raw' },
            shareOf(events, keys.length, i),
          ),
        ),
      );
    });
  } finally {
    for (const r of readers) r.close();
    await topo.flush();
  }
}

type Measure = (topo: Topology, events: number) => Promise<number>;

/**
 * Library and baseline on the single server and on the cluster: an untimed
 * warm-up of each, then `runs` rounds of the four, interleaved.
 */
async function compare(
  ctx: CaseContext,
  single: Topology,
  cluster: Topology,
  library: Measure,
  baseline: Measure,
): Promise<{ singleNode: TopologyRates; cluster: TopologyRates }> {
  const { events, runs, warmupEvents } = ctx.options;
  const sides: (() => Promise<number>)[] = [
    () => library(single, events),
    () => baseline(single, events),
    () => library(cluster, events),
    () => baseline(cluster, events),
  ];
  for (const topo of [single, cluster]) {
    await library(topo, warmupEvents);
    await baseline(topo, warmupEvents);
  }
  const [libSingle, rawSingle, libCluster, rawCluster] = (await rotate(runs, sides)) as [Summary, Summary, Summary, Summary];
  const rates = (lib: Summary, raw: Summary): TopologyRates => ({ library: lib, baseline: raw, ratio: lib.median / raw.median });
  return { singleNode: rates(libSingle, rawSingle), cluster: rates(libCluster, rawCluster) };
}

function clusterResult(
  ctx: CaseContext,
  what: { case: ClusterCase; title: string; baselineName: string; slots: readonly number[] },
  m: { singleNode: TopologyRates; cluster: TopologyRates },
): ClusterResult {
  return {
    type: 'cluster',
    client: ctx.kind,
    ...what,
    events: ctx.options.events,
    masters: ctx.options.clusterMasters,
    ...m,
    libraryVsSingleNode: m.cluster.library.median / m.singleNode.library.median,
    baselineVsSingleNode: m.cluster.baseline.median / m.singleNode.baseline.median,
  };
}

/**
 * publish: `stream.add` with `window` in flight spread over the streams,
 * against raw XADD with `window` concurrent commands on the same client.
 * sink: one sink reading every stream, acking each event, against one raw
 * XREADGROUP COUNT 1000 + XACK loop per stream, each on its own connection.
 * Both on the cluster and, with the same streams, on the single server.
 */
export async function clusterCase(ctx: CaseContext): Promise<ClusterResult[]> {
  const { clusterMasters: masters, clusterStreams: count, window } = ctx.options;
  ctx.log(`${ctx.kind}: starting a local Redis Cluster, ${masters} masters + ${masters} replicas`);
  const cluster = await startCluster(masters);
  try {
    ctx.log(`${ctx.kind}: cluster node pids ${cluster.nodes.map((n) => n.pid).join(', ')}`);
    const { names, slots } = await spreadNames(cluster, masters, count);
    const owners = await mastersOf(cluster, slots);
    ctx.log(`${ctx.kind}: ${count} streams in slots ${slots.join(', ')} on masters ${owners.join(', ')}`);
    const client = await connectClusterClient(
      ctx.kind,
      cluster.nodes.map((n) => n.port),
      `bench:${ctx.kind}:cluster`,
    );
    try {
      const single: Topology = {
        client: ctx.client,
        readConnection: () => connectClient(ctx.kind, ctx.url, 'bench:raw-read', 'reader'),
        flush: () => flush(ctx.client),
      };
      const onCluster: Topology = {
        client,
        readConnection: async (key) =>
          connectClient(ctx.kind, (await cluster.masterOf(slotOf(key))).url, 'bench:raw-read', 'reader'),
        flush: () => flushCluster(cluster),
      };
      ctx.log(`${ctx.kind}: cluster publish`);
      const publish = await compare(
        ctx,
        single,
        onCluster,
        (topo, n) => publishRun(ctx, topo, names, n, true),
        (topo, n) => publishRun(ctx, topo, names, n, false),
      );
      ctx.log(`${ctx.kind}: cluster sink consume`);
      const sink = await compare(
        ctx,
        single,
        onCluster,
        (topo, n) => sinkRun(ctx, topo, names, n),
        (topo, n) => rawGroupRun(ctx, topo, names, n),
      );
      const after = await mastersOf(cluster, slots);
      if (after.some((port, i) => port !== owners[i])) {
        ctx.log(`${ctx.kind}: WARNING: a slot changed master during the case (${owners.join(', ')} -> ${after.join(', ')})`);
      }
      return [
        clusterResult(
          ctx,
          {
            case: 'cluster-publish',
            title: `publish, ${window} in flight over ${count} streams`,
            baselineName: `raw XADD, ${window} concurrent commands on the same client`,
            slots,
          },
          publish,
        ),
        clusterResult(
          ctx,
          {
            case: 'cluster-sink',
            title: `one sink over ${count} streams, ack each event`,
            baselineName: `raw XREADGROUP COUNT ${READ_COUNT} + XACK per batch, one loop and read connection per stream`,
            slots,
          },
          sink,
        ),
      ];
    } finally {
      client.close();
    }
  } finally {
    await stopCluster(cluster);
  }
}
