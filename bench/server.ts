/**
 * The private Redis server every case runs on (persistence off), and what the
 * server alone can take (`redis-benchmark`).
 */
import { execFile } from 'node:child_process';
import { RedisServer } from '../test/support/redisServer.js';
import type { BenchClient } from './clients.js';
import type { CeilingResult } from './results.js';
import { summarize } from './stats.js';

export type { RedisServer };

/** A `redis-server` on a free port with no RDB snapshots and no AOF; stop it with `.stop()`. */
export function startServer(): Promise<RedisServer> {
  return RedisServer.start({ args: ['--save', '', '--appendonly', 'no'] });
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
