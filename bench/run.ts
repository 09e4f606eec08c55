/**
 * `npm run bench [-- --quick] [-- --json | --markdown]`: starts a private
 * redis-server, runs every case for each client on it (the cluster case also
 * starts and stops a local Redis Cluster of its own), prints the results and
 * the targets, and stops the server.
 */

import { writeFileSync } from 'node:fs';
import { clusterCase } from './cases/cluster.js';
import { readerConsumeCase, sinkConsumeCase } from './cases/consume.js';
import type { CaseContext } from './cases/context.js';
import { dedupCase } from './cases/dedup.js';
import { endToEndCase } from './cases/endToEnd.js';
import { idleCases } from './cases/idle.js';
import { latencyCase } from './cases/latency.js';
import { memoryCase } from './cases/memory.js';
import { otelCases } from './cases/otel.js';
import { peerCases } from './cases/peer.js';
import { processBatchCases } from './cases/processBatch.js';
import { publishCase, publishOneAtATimeCase } from './cases/publish.js';
import { readersCase } from './cases/readers.js';
import { reclaimCases } from './cases/reclaim.js';
import { retentionCases } from './cases/retention.js';
import { scalingCases } from './cases/scaling.js';
import { type BenchClient, connectClient } from './clients.js';
import { currentLoad, describeMachine } from './machine.js';
import { type BenchOptions, type CaseName, parseOptions } from './options.js';
import { makePayload } from './rawStreams.js';
import { readReport, renderReport } from './report.js';
import type { BenchReport, CaseResult, CeilingResult, ScalingResult } from './results.js';
import { flush, measureCeiling, type RedisServer, redisVersion, startServer, stopRunningClusters } from './server.js';
import { writeCurveCharts } from './svg.js';
import { evaluateTargets } from './targets.js';

type ClientCase = Exclude<CaseName, 'ceiling'>;

const CASES: Record<ClientCase, (ctx: CaseContext) => Promise<CaseResult | CaseResult[]>> = {
  publish: publishCase,
  'publish-one': publishOneAtATimeCase,
  retention: retentionCases,
  dedup: dedupCase,
  otel: otelCases,
  sink: sinkConsumeCase,
  'process-batch': processBatchCases,
  reader: readerConsumeCase,
  readers: readersCase,
  e2e: endToEndCase,
  latency: latencyCase,
  peer: peerCases,
  memory: memoryCase,
  cluster: clusterCase,
  scaling: scalingCases,
  idle: idleCases,
  reclaim: reclaimCases,
};

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function settingsOf(o: BenchOptions): Record<string, number | boolean | string> {
  return {
    quick: o.quick,
    events: o.events,
    runs: o.runs,
    latencyRuns: o.latencyRuns,
    warmupEvents: o.warmupEvents,
    payloadBytes: o.payloadBytes,
    window: o.window,
    oneAtATimeEvents: o.oneAtATimeEvents,
    latencyEvents: o.latencyEvents,
    latencyRate: o.latencyRate,
    peerEvents: o.peerEvents,
    memoryEvents: o.memoryEvents,
    clusterMasters: o.clusterMasters,
    clusterStreams: o.clusterStreams,
    scalingRuns: o.scalingRuns,
    scalingEvents: o.scalingEvents,
  };
}

async function runAll(server: RedisServer, options: BenchOptions, payload: Buffer): Promise<BenchReport> {
  const loadStart = currentLoad();
  const started = performance.now();
  const admin: BenchClient = await connectClient('ioredis', server.url, 'bench:admin');
  try {
    const version = await redisVersion(admin);
    let ceiling: CeilingResult | undefined;
    if (options.cases.includes('ceiling')) {
      log(`server ceiling: redis-benchmark, ${options.ceilingRequests} requests x ${options.runs}`);
      ceiling = await measureCeiling(server, admin, options.ceilingRequests, payload, options.runs);
    }
    const results: CaseResult[] = [];
    for (const kind of options.clients) {
      const client = await connectClient(kind, server.url, `bench:${kind}`);
      try {
        const ctx: CaseContext = { url: server.url, kind, options, client, payload, log };
        for (const name of options.cases) {
          if (name === 'ceiling') continue;
          log(`${kind}: ${name}`);
          const t0 = performance.now();
          const r = await CASES[name](ctx);
          results.push(...(Array.isArray(r) ? r : [r]));
          await flush(admin);
          log(`${kind}: ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        }
      } finally {
        client.close();
      }
    }
    return {
      machine: describeMachine(version, loadStart),
      settings: settingsOf(options),
      durationMs: performance.now() - started,
      ceiling,
      results,
      targets: evaluateTargets(results, ceiling),
    };
  } finally {
    admin.close();
  }
}

function formatReport(report: BenchReport, options: BenchOptions): string {
  if (options.out) writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`);
  if (options.svg) {
    const scaling = report.results.filter((r): r is ScalingResult => r.type === 'scaling');
    for (const file of writeCurveCharts(options.svg, scaling)) log(`chart: ${file}`);
  }
  return options.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report, options.format);
}

/** Resolves to the report text, or rejects; the server is stopped either way. */
async function main(): Promise<string> {
  const options = parseOptions(process.argv.slice(2));
  if (options.from) return formatReport(readReport(options.from), options);
  const payload = makePayload(options.payloadBytes);
  log('starting a private redis-server');
  const server = await startServer();
  const stopOnSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping redis-server ${server.pid} and any cluster still running`);
    void Promise.allSettled([server.stop(), stopRunningClusters()]).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    log(`redis-server pid ${server.pid} on port ${server.port}`);
    return formatReport(await runAll(server, options, payload), options);
  } finally {
    await server.stop();
  }
}

// Exit explicitly once the output is flushed: a client left open by a failed case must not keep the process alive.
main().then(
  (out) => process.stdout.write(out, () => process.exit(0)),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
