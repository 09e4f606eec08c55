import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli } from './support/cli.js';
import { measured } from './support/cliMemory.js';
import { RedisServer } from './support/redisServer.js';

beforeAll(buildCli, 120_000);

/** 12 payloads of 2 MB: 24 MB that a bounded read never holds together (read whole: about +35 MB of RSS). */
const N = 12;
const payload = Buffer.alloc(2 * 1024 * 1024, 0x78);
/** Room for noise over the baseline (a few MB between runs): well under what reading the 24 MB whole costs. */
const SLACK_MB = 20;

describe.skipIf(!existsSync('/usr/bin/time'))('CLI memory with 12 payloads of 2 MB', { timeout: 60_000 }, () => {
  let server: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
    const letter = ['source_stream', 'big', 'source_sink', 'billing', 'deliveries', '3', 'reason', 'handler failed'];
    const batch = redis.pipeline();
    for (let i = 0; i < N; i++) {
      batch.xadd('pulse:stream:big', '*', 'n', 'ev', 'p', payload);
      batch.xadd('pulse:stream:big:dead', '*', 'n', 'ev', 'p', payload, 'source_id', `${i + 1}-0`, ...letter);
    }
    batch.xadd('pulse:stream:one', '*', 'n', 'ev', 'p', payload);
    await batch.exec();
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  // One after the other: RSS peaks measured side by side on 2 cores are noisy enough.
  it('tail --from oldest --count 1 costs about what it costs on a one-entry stream', async ({ expect }) => {
    const one = await measured(['--redis', server.url, 'tail', 'one', '--from', 'oldest', '--count', '1']);
    expect(one.code, one.stderr).toBe(0);
    const big = await measured(['--redis', server.url, 'tail', 'big', '--from', 'oldest', '--count', '1']);
    expect(big.code, big.stderr).toBe(0);
    expect(big.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(big.rssMb, `one entry: ${one.rssMb.toFixed(0)} MB, ${N} entries: ${big.rssMb.toFixed(0)} MB`).toBeLessThan(
      one.rssMb + SLACK_MB,
    );
  });

  it('dead <stream> (a table without payloads) costs about what streams costs', async ({ expect }) => {
    const base = await measured(['--redis', server.url, 'streams']);
    expect(base.code, base.stderr).toBe(0);
    const list = await measured(['--redis', server.url, 'dead', 'big']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.split('\n').filter((l) => l.includes('handler failed'))).toHaveLength(N);
    expect(list.rssMb, `streams: ${base.rssMb.toFixed(0)} MB, dead list: ${list.rssMb.toFixed(0)} MB`).toBeLessThan(
      base.rssMb + SLACK_MB,
    );
  });
});
