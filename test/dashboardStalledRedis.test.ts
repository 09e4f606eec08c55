/**
 * The dashboard while Redis stops answering (a server stuck in a slow script
 * or a fork, a network path that drops packets without a reset; here
 * redis-server SIGSTOPped, its connections left open): reads answer HTTP 500
 * within their deadline, a live page gets a `failure` event instead of the
 * last figures shown as live, and both recover once Redis answers again.
 * Found by review C (revCdashboardStall): `ui` answered nothing for 15 s and
 * sent no failure for 20 s. The in-process tests shorten the deadline through
 * the internal LIMITS; the `ui` one runs the CLI with its defaults.
 */
import { type ChildProcess, spawn } from 'node:child_process';

import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { LIMITS } from '../packages/pulse-streaming-cli/src/dashboard/limits.js';
import { buildCli, MAIN } from './support/cli.js';
import { waitFor } from './support/clients.js';
import { readEvents, serveDashboard } from './support/dashboard.js';
import { RedisServer } from './support/redisServer.js';

beforeAll(buildCli, 120_000);

const count = (text: string, event: string): number => text.split(`event: ${event}\n`).length - 1;

/** A Redis of the test's own (it is paused) holding one stream. */
async function pausableRedis(onFinished: (fn: () => Promise<void> | void) => void): Promise<RedisServer> {
  const server = await RedisServer.start();
  onFinished(async () => {
    server.resume();
    await server.stop();
  });
  const redis = new Redis(server.url);
  await new Stream('orders', redis).add('e', 'x');
  redis.disconnect();
  return server;
}

describe.concurrent('dashboard while Redis does not answer', { timeout: 60_000 }, () => {
  it('answers reads with HTTP 500 and tells a live page, then recovers', async ({ onTestFinished }) => {
    const server = await pausableRedis(onTestFinished);
    // The caller's own client, without a command timeout: the dashboard's deadline still applies.
    const redis = new Redis(server.url);
    onTestFinished(() => redis.disconnect());
    const dash = await serveDashboard({ redis });
    onTestFinished(() => dash.close());
    const readMs = LIMITS.readMs;
    const everyMs = LIMITS.overviewEveryMs;
    LIMITS.readMs = 500;
    LIMITS.overviewEveryMs = 200;
    onTestFinished(() => {
      LIMITS.readMs = readMs;
      LIMITS.overviewEveryMs = everyMs;
    });

    const live = readEvents(`${dash.url}api/live?view=overview`);
    onTestFinished(live.close);
    await waitFor(() => count(live.text(), 'snapshot') > 0, { what: 'a first snapshot' });

    server.pause();
    const started = Date.now();
    const res = await fetch(`${dash.url}api/overview`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(/did not answer within 0.5 s/);
    expect(Date.now() - started).toBeLessThan(3000);
    await waitFor(() => count(live.text(), 'failure') > 0, { what: 'a failure event on the live page' });

    server.resume();
    const snapshots = count(live.text(), 'snapshot');
    await waitFor(() => count(live.text(), 'snapshot') > snapshots, { what: 'snapshots again after Redis answers' });
    expect((await fetch(`${dash.url}api/overview`)).status).toBe(200);
  });

  it('`ui` answers a read with HTTP 500 within its deadline (5 s) and tells a live page', async ({ onTestFinished }) => {
    const server = await pausableRedis(onTestFinished);
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.REDIS_URL;
    const child: ChildProcess = spawn(process.execPath, [MAIN, '--redis', server.url, 'ui', '--port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const url = (await waitFor(() => /dashboard: (http:\/\/\S+)/.exec(stdout)?.[1], {
      timeout: 15_000,
      what: 'the URL',
    })) as string;
    expect((await fetch(`${url}api/overview`)).status).toBe(200);
    const live = readEvents(`${url}api/live?view=overview`);
    onTestFinished(live.close);
    await waitFor(() => count(live.text(), 'snapshot') > 0, { what: 'a first snapshot' });

    server.pause();
    const res = await fetch(`${url}api/overview`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(500);
    await waitFor(() => count(live.text(), 'failure') > 0, { timeout: 10_000, what: 'a failure event on the live page' });
    server.resume();
    await waitFor(async () => (await fetch(`${url}api/overview`)).status === 200, {
      timeout: 10_000,
      interval: 200,
      what: 'reads again after Redis answers',
    });
  });
});
