/**
 * Audit: README "Command line" and "Dashboard" promises no test checked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { buildCli, cli, MAIN } from './support/cli.js';
import { sharedUrl, uniqueName } from './support/clients.js';
import { getJson, type ServedDashboard, serveDashboard } from './support/dashboard.js';

beforeAll(buildCli, 120_000);

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('audit: CLI', { timeout: 60_000 }, () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(sharedUrl());
  });
  afterAll(() => redis.disconnect());

  it('README: without --redis, REDIS_URL names the server (no throwaway redis-server)', async () => {
    const s = new Stream(uniqueName('env'), redis);
    await s.add('e', 'x');
    try {
      const env = { ...process.env, NO_COLOR: '1', REDIS_URL: sharedUrl() };
      const r = await run(['stream', s.name, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ name: s.name, length: 1 });
      expect(r.stderr).not.toContain('throwaway');
    } finally {
      await s.destroy();
    }
  });

  it('README: tail --json gives an event its headers ("headers" ({} when none))', async () => {
    const s = new Stream(uniqueName('hdr'), redis);
    try {
      const id = await s.add('e', 'x', { headers: { tenant: 'acme', 'x.y-z_1': 'v' } });
      const r = await cli(['tail', s.name, '--from', 'oldest', '--count', '1', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const ev = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
      expect(ev.id).toBe(id);
      expect(ev.headers).toEqual({ tenant: 'acme', 'x.y-z_1': 'v' });
    } finally {
      await s.destroy();
    }
  });

  it('README: colours only on a terminal', async () => {
    const env = { FORCE_COLOR: undefined, NO_COLOR: undefined } as unknown as NodeJS.ProcessEnv;
    const name = uniqueName('nosuch');
    const tty = await cli(['stream', name], { tty: true, env });
    expect(tty.code).toBe(1);
    expect(tty.stdout + tty.stderr).toContain('\u001b[');
    const pipe = await cli(['stream', name], { env });
    expect(pipe.code).toBe(1);
    expect(pipe.stdout + pipe.stderr).not.toContain('\u001b[');
  });

  it('README: `ui`, which runs until you stop it, exits 0 after Ctrl-C', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    const child = spawn(process.execPath, [MAIN, '--redis', sharedUrl(), 'ui', '--port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`no URL: ${out}`)), 15_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (/dashboard: http/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const exited = new Promise<number | null>((r) => child.on('close', r));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('README: ui serves on http://127.0.0.1:7400/ by default', async (ctx) => {
    if (await listening(7400)) ctx.skip();
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    const child = spawn(process.execPath, [MAIN, '--redis', sharedUrl(), 'ui'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`no URL: ${out}`)), 15_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /dashboard: (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1] as string);
        }
      });
    });
    expect(url).toBe('http://127.0.0.1:7400/');
    expect((await fetch('http://127.0.0.1:7400/api/config')).status).toBe(200);
    const exited = new Promise<number | null>((r) => child.on('close', r));
    child.kill('SIGINT');
    await exited;
  });
});

describe('audit: dashboard defaults', () => {
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    redis = new Redis(sharedUrl());
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
  });

  it('README: the streams overview is 50 rows at a time', async () => {
    const prefix = uniqueName('ov');
    for (let i = 0; i < 60; i++) await redis.xadd(`pulse:stream:${prefix}-${i}`, '*', 'n', 'e', 'p', 'x');
    try {
      const page = await getJson<{ total: number; streams: unknown[] }>(dash, `api/overview?q=${prefix}`);
      expect(page.body.total).toBe(60);
      expect(page.body.streams).toHaveLength(50);
    } finally {
      for (let i = 0; i < 60; i++) await redis.del(`pulse:stream:${prefix}-${i}`);
    }
  });

  it("README: a sink's pending events: who holds each (100 at a time, oldest first, with next and previous pages)", async () => {
    const key = `pulse:stream:${uniqueName('pend')}`;
    const pipeline = redis.pipeline();
    for (let i = 0; i < 250; i++) pipeline.xadd(key, '*', 'n', 'e', 'p', String(i));
    await pipeline.exec();
    await redis.call('XGROUP', 'CREATE', key, 'g', '0');
    await redis.call('XREADGROUP', 'GROUP', 'g', 'w', 'STREAMS', key, '>');
    try {
      const name = encodeURIComponent(key.slice('pulse:stream:'.length));
      const p = await getJson<{ total: number; entries: unknown[] }>(dash, `api/pending?name=${name}&sink=g`);
      expect(p.body.total).toBe(250);
      expect(p.body.entries).toHaveLength(100);
      const ids = (p.body.entries as Array<{ id: string }>).map((e) => e.id);
      const order = (id: string) => id.split('-').map(BigInt) as [bigint, bigint];
      const before = (a: string, b: string) =>
        order(a)[0] < order(b)[0] || (order(a)[0] === order(b)[0] && order(a)[1] < order(b)[1]);
      expect(ids.every((id, i) => i === 0 || before(ids[i - 1] as string, id))).toBe(true);
      // The next page starts after the last one shown.
      expect((p.body as { next?: string | null }).next).toBe(ids[99]);
    } finally {
      await redis.del(key);
    }
  });

  it('README: the dashboard never closes the client it is given (handler.close() leaves it usable)', async () => {
    const own = new Redis(sharedUrl());
    const d = await serveDashboard({ redis: own });
    await getJson(d, 'api/overview');
    await d.close();
    expect(own.status).toBe('ready');
    expect(await own.ping()).toBe('PONG');
    own.disconnect();
  });
});

describe('audit: /metrics', () => {
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    redis = new Redis(sharedUrl());
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
  });

  it('README: a sink whose lag Redis cannot tell (XINFO GROUPS nil) has no pulse_sink_lag sample', async () => {
    const name = uniqueName('nolag');
    const key = `pulse:stream:${name}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(String(await redis.xadd(key, '*', 'n', 'e', 'p', String(i))));
    await redis.call('XGROUP', 'CREATE', key, 'known', '$');
    await redis.call('XGROUP', 'CREATE', key, 'unknown', '0');
    await redis.call('XREADGROUP', 'GROUP', 'unknown', 'c', 'COUNT', '1', 'STREAMS', key, '>');
    await redis.call('XDEL', key, ids[3] as string);
    try {
      const groups = (await redis.call('XINFO', 'GROUPS', key)) as unknown[][];
      const lagOf = (g: unknown[]) => g[g.indexOf('lag') + 1];
      const byName = Object.fromEntries(groups.map((g) => [String(g[g.indexOf('name') + 1]), lagOf(g)]));
      expect(byName.unknown).toBeNull();
      const text = await (await fetch(`${dash.url}metrics`)).text();
      const lag = text.split('\n').filter((l) => l.startsWith('pulse_sink_lag{') && l.includes(`stream="${name}"`));
      expect(lag.some((l) => l.includes('sink="known"'))).toBe(true);
      expect(lag.filter((l) => l.includes('sink="unknown"'))).toEqual([]);
      expect(text).toMatch(new RegExp(`pulse_sink_pending\\{stream="${name}",sink="unknown"\\} 1`));
    } finally {
      await redis.del(key);
    }
  });
});
