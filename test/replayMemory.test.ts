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

describe.skipIf(!existsSync('/usr/bin/time'))('CLI dead replay memory with 12 letters of 2 MB', { timeout: 60_000 }, () => {
  let server: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
    const letter = ['source_stream', 'big', 'source_sink', 'billing', 'deliveries', '3', 'reason', 'handler failed'];
    const batch = redis.pipeline();
    for (let i = 0; i < N; i++)
      batch.xadd('pulse:stream:big:dead', '*', 'n', 'ev', 'p', payload, 'source_id', `${i + 1}-0`, ...letter);
    await batch.exec();
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('dead replay <stream> costs about what streams costs, not the size of the letters', async ({ expect }) => {
    const base = await measured(['--redis', server.url, 'streams']);
    expect(base.code, base.stderr).toBe(0);
    const replay = await measured(['--redis', server.url, 'dead', 'replay', 'big']);
    expect(replay.code, replay.stderr).toBe(0);
    expect(Number(await redis.xlen('pulse:stream:big'))).toBe(N);
    // Before a fix: about 35-50 MB over the baseline (every payload read whole).
    expect(replay.rssMb, `streams: ${base.rssMb.toFixed(0)} MB, dead replay: ${replay.rssMb.toFixed(0)} MB`).toBeLessThan(
      base.rssMb + SLACK_MB,
    );
  });
});
