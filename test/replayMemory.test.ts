/**
 * Outside review AI (defect 3; line numbers as of commit 41e36ff):
 * `pulse-streaming dead replay <stream>` (and `replayDeadLetters`, which it
 * calls, as does the dashboard's replay) read every dead letter whole,
 * payload included, 500 at a time (`readDeadLetters`, deadLetters.ts lines
 * 199-200), only to pick their IDs by `source_stream` and `source_sink`:
 * the move itself runs inside Redis (`replayDead`), which needs no payload.
 * So a replay of big letters held up to 500 payloads at once in the
 * process (500 letters of 5 MB: 2.5 GB, past what a default Node heap and
 * Buffer allow) and made Redis build a reply as big: the memory problem
 * outside review C fixed for `dead` and `tail`, left in `dead replay`.
 * Expected: a replay costs about what the payload-free `dead` table costs.
 * Measured as cliBigPayloadMemory.test.ts measures (peak RSS against a
 * baseline run of `streams`), with 12 letters of 2 MB.
 * Failed before the fix: 1 of 1 (110 MB against a 69 MB baseline).
 * Fixed: the replay pages through the letters with a script that returns
 * only each one's ID, source and size (`deadLetterPage`), so no payload
 * leaves Redis on one node, and cluster moves claim batches of at most 4 MB.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, MAIN } from './support/cli.js';
import { RedisServer } from './support/redisServer.js';

beforeAll(buildCli, 120_000);

interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the process, in MB. */
  rssMb: number;
}

/** Runs the CLI under /usr/bin/time: its exit code, output and peak RSS. */
function measured(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS=%M', process.execPath, MAIN, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const m = /MAXRSS=(\d+)/.exec(stderr);
      resolve({ code, stdout, stderr: stderr.replace(/MAXRSS=\d+\n?/, ''), rssMb: m ? Number(m[1]) / 1024 : Number.NaN });
    });
  });
}

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
