/**
 * Idle cost (issue 20): Redis commands per second while nothing is
 * published, counted with `INFO commandstats` (commands run by scripts count
 * one each, as in `total_commands_processed`; replication acks left out),
 * default options (20 s grace, 5 s block). One sink instance over 1, 100 and 1000 streams, and 10 sinks (own names) on
 * one stream; on a private server per setup (all measured at once) and on a
 * local Redis Cluster (summed over its masters, one setup at a time).
 */
import { type Sink, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type BenchClient, connectClient, connectClusterClient } from '../clients.js';
import type { IdleResult } from '../results.js';
import { type RedisCluster, type RedisServer, startCluster, startServer, stopCluster } from '../server.js';
import { type CaseContext, uniqueName } from './context.js';

interface Setup {
  readonly streams: number;
  readonly sinks: number;
}

const SETUPS: readonly Setup[] = [
  { streams: 1, sinks: 1 },
  { streams: 100, sinks: 1 },
  { streams: 1000, sinks: 1 },
  { streams: 1, sinks: 10 },
];

/** After the sinks started: their first sweeps and reads are not idle cost. */
const SETTLE_MS = 3000;

function describeSetup(s: Setup): string {
  return s.sinks === 1
    ? `1 sink over ${s.streams} stream${s.streams === 1 ? '' : 's'}`
    : `${s.sinks} sinks (own names) on ${s.streams} stream`;
}

/**
 * Commands the nodes processed so far, by command, from `INFO commandstats`
 * (commands run by scripts count one each, as in `total_commands_processed`).
 */
async function counts(nodes: readonly BenchClient[]): Promise<Map<string, number>> {
  const byCommand = new Map<string, number>();
  for (const n of nodes) {
    const cmds = String(await n.send(['INFO', 'commandstats']));
    for (const m of cmds.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
      byCommand.set(m[1] as string, (byCommand.get(m[1] as string) ?? 0) + Number(m[2]));
    }
  }
  return byCommand;
}

/** Not the sinks': the count itself, and replicas acknowledging replication (cluster). */
const NOT_THE_SINKS = new Set(['info', 'replconf']);

/** Commands sent during the window, most first. */
function deltas(before: Map<string, number>, after: Map<string, number>): Array<readonly [string, number]> {
  const out = [...after]
    .map(([c, n]) => [c, n - (before.get(c) ?? 0)] as const)
    .filter(([c, n]) => n > 0 && !NOT_THE_SINKS.has(c));
  return out.sort((a, b) => b[1] - a[1]);
}

/** The sinks of one setup, each subscribed (reading), on `client`. */
async function startSinks(client: BenchClient, setup: Setup): Promise<Sink[]> {
  const streams = Array.from({ length: setup.streams }, () => new Stream(uniqueName('idle'), client.redis));
  const sinks: Sink[] = [];
  for (let i = 0; i < setup.sinks; i++) {
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const sink = await first.newSink(`idle${i}`);
    sinks.push(sink);
    for (const s of rest) await sink.addStream(s);
    // An idle consumer: a loop waiting for its next event (a pending next()), so the sink reads
    // (blocking) but nothing comes. Not a subscription that never asks: since 2026-12-07 (663014d)
    // that one is a stuck loop, stalled after a grace period, and its reads end then (on a cluster
    // with 1000 streams, some 1,200 CLIENT UNBLOCKs and 1,600 reads made anew at once), inside the
    // 20 s window of a quick run: 52-77 commands/s measured where an idle sink makes 1.4.
    void sink.subscribe().next();
  }
  return sinks;
}

interface Measured {
  readonly seconds: number;
  readonly commands: number;
  readonly top: string;
}

/** Counts the commands `nodes` process over `windowMs`. */
async function window(nodes: readonly BenchClient[], windowMs: number): Promise<Measured> {
  const a = await counts(nodes);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = await counts(nodes);
  const seconds = (performance.now() - t0) / 1000;
  const sent = deltas(a, b);
  const top = sent
    .slice(0, 3)
    .map(([c, n]) => `${c} ${(n / seconds).toFixed(2)}/s`)
    .join(', ');
  return { seconds, commands: sent.reduce((sum, [, n]) => sum + n, 0), top };
}

function result(ctx: CaseContext, topology: IdleResult['topology'], setup: Setup, m: Measured): IdleResult {
  const perSecond = m.commands / m.seconds;
  return {
    type: 'idle',
    client: ctx.kind,
    topology,
    setup: describeSetup(setup),
    streams: setup.streams,
    sinks: setup.sinks,
    seconds: m.seconds,
    commandsPerSecond: perSecond,
    perInstance: perSecond / setup.sinks,
    perPair: perSecond / (setup.streams * setup.sinks),
    dominant: m.top,
  };
}

/** Every setup on a private server of its own, all measured over the same window. */
async function singleNode(ctx: CaseContext, windowMs: number): Promise<IdleResult[]> {
  const servers: RedisServer[] = [];
  const clients: BenchClient[] = [];
  const sinks: Sink[] = [];
  try {
    for (const setup of SETUPS) {
      const server = await startServer();
      servers.push(server);
      const client = await connectClient(ctx.kind, server.url, 'bench:idle');
      clients.push(client);
      sinks.push(...(await startSinks(client, setup)));
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const measured = await Promise.all(clients.map((c) => window([c], windowMs)));
    return SETUPS.map((setup, i) => result(ctx, 'single node', setup, measured[i] as Measured));
  } finally {
    await Promise.allSettled(sinks.map((s) => s.close()));
    for (const c of clients) c.close();
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
}

/** Every setup on one local cluster, one at a time, counted over its masters. */
async function onCluster(ctx: CaseContext, windowMs: number): Promise<IdleResult[]> {
  const cluster: RedisCluster = await startCluster(ctx.options.clusterMasters);
  const masters: BenchClient[] = [];
  try {
    const client = await connectClusterClient(
      ctx.kind,
      cluster.nodes.map((n) => n.port),
      `bench:${ctx.kind}:idle`,
    );
    try {
      for (const m of await cluster.masters()) masters.push(await connectClient(ctx.kind, m.url, 'bench:idle-count'));
      const out: IdleResult[] = [];
      for (const setup of SETUPS) {
        ctx.log(`${ctx.kind}: idle on the cluster: ${describeSetup(setup)}`);
        const sinks = await startSinks(client, setup);
        try {
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          out.push(result(ctx, 'cluster', setup, await window(masters, windowMs)));
        } finally {
          await Promise.allSettled(sinks.map((s) => s.close()));
        }
      }
      return out;
    } finally {
      client.close();
    }
  } finally {
    for (const m of masters) m.close();
    await stopCluster(cluster);
  }
}

export async function idleCases(ctx: CaseContext): Promise<IdleResult[]> {
  // Four liveness calls (one every grace period / 2, 10 s) in a full run, two in a quick one.
  const windowMs = ctx.options.quick ? 20_000 : 40_000;
  ctx.log(`${ctx.kind}: idle, ${SETUPS.map(describeSetup).join('; ')}: ${windowMs / 1000} s on a private server each`);
  const single = await singleNode(ctx, windowMs);
  return [...single, ...(await onCluster(ctx, windowMs))];
}
