/**
 * The private Redis server every case runs on (persistence off), the local
 * Redis Cluster of the cluster case, and what the server alone can take
 * (`redis-benchmark`).
 */
import { execFile } from 'node:child_process';
import { RedisCluster } from '../test/support/redisCluster.js';
import { RedisServer, rawCommand } from '../test/support/redisServer.js';
import type { BenchClient } from './clients.js';
import type { CeilingResult } from './results.js';
import { summarize } from './stats.js';

export type { RedisCluster, RedisServer };

/** A `redis-server` on a free port with no RDB snapshots and no AOF; stop it with `.stop()`. */
export function startServer(): Promise<RedisServer> {
  return RedisServer.start({ args: ['--save', '', '--appendonly', 'no'] });
}

/** Longest wait for one administrative command on a cluster node (FLUSHALL of a full run's events). */
const NODE_COMMAND_MS = 30_000;

async function nodeCommand(node: RedisServer, line: string): Promise<void> {
  const reply = await rawCommand(node.port, line, NODE_COMMAND_MS);
  if (!reply.startsWith('+')) throw new Error(`${line} on port ${node.port}: ${reply}`);
}

/** Clusters started and not stopped yet, for {@link stopRunningClusters}. */
const running = new Set<RedisCluster>();

/**
 * A local Redis Cluster of `masters` masters with one replica each
 * (`test/support/redisCluster.ts`); stop it with {@link stopCluster}. The harness starts
 * its nodes with `--appendonly yes`: AOF is switched off on every node once
 * the cluster is up (`CONFIG SET appendonly no`), so that the nodes persist
 * no more than the single private server. The node timeout (1 s in the
 * harness, for failover tests) is raised to 15 s so that a node starved of CPU
 * by the benchmark is not failed over in the middle of a run.
 */
export async function startCluster(masters: number): Promise<RedisCluster> {
  const cluster = await RedisCluster.start(masters);
  running.add(cluster);
  try {
    for (const node of cluster.nodes) {
      await nodeCommand(node, 'CONFIG SET appendonly no');
      await nodeCommand(node, 'CONFIG SET cluster-node-timeout 15000');
    }
    return cluster;
  } catch (err) {
    await stopCluster(cluster);
    throw err;
  }
}

/** Kills every node of the cluster by its pid and removes their directories. */
export async function stopCluster(cluster: RedisCluster): Promise<void> {
  running.delete(cluster);
  await cluster.stop();
}

/** Stops every cluster still running (on SIGINT/SIGTERM). */
export async function stopRunningClusters(): Promise<void> {
  await Promise.all([...running].map(stopCluster));
}

/** Empties every master of the cluster (replicas follow). */
export async function flushCluster(cluster: RedisCluster): Promise<void> {
  for (const node of await cluster.masters()) await nodeCommand(node, 'FLUSHALL SYNC');
}

export async function redisVersion(client: BenchClient): Promise<string> {
  const info = String(await client.send(['INFO', 'server']));
  return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
}

/** Empties the private server between measurements, so that no run pays for the previous one's data. */
export async function flush(client: BenchClient): Promise<void> {
  await client.send(['FLUSHALL', 'SYNC']);
}

function redisBenchmark(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-benchmark', [...args], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-benchmark failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Pipelined XADD of a payload like the library's (`-P 128`), `runs` times. */
export async function measureCeiling(
  server: RedisServer,
  client: BenchClient,
  requests: number,
  payload: Buffer,
  runs: number,
): Promise<CeilingResult> {
  const args = ['-h', '127.0.0.1', '-p', String(server.port), '-P', '128', '-n', String(requests), '-q'];
  const command = ['XADD', 'bench:ceiling', '*', 'p', payload.toString('latin1')];
  const values: number[] = [];
  for (let run = 0; run < runs; run++) {
    const out = await redisBenchmark([...args, ...command]);
    const found = [...out.matchAll(/([\d.]+) requests per second/g)].pop();
    if (!found?.[1]) throw new Error(`unexpected redis-benchmark output: ${out}`);
    values.push(Number(found[1]));
    await flush(client);
  }
  return {
    command: `redis-benchmark -p <port> -P 128 -n ${requests} -q XADD bench:ceiling '*' p <${payload.length} bytes>`,
    requestsPerSecond: summarize(values),
  };
}
