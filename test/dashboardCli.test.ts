/**
 * `pulse-streaming ui`, run as the built binary: it prints the URL, serves
 * the dashboard on 127.0.0.1 (refusing non-local Host names, against DNS
 * rebinding), passes --read-only and --token on, starts the throwaway
 * redis-server without --redis, and stops cleanly on Ctrl-C (SIGINT).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const MAIN = fileURLToPath(new URL('../packages/pulse-streaming-cli/dist/main.js', import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

interface Running {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Starts `pulse-streaming <args>` and resolves once it printed its URL. */
function startUi(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...env };
  delete childEnv.REDIS_URL;
  const child = spawn(process.execPath, [MAIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 15 s: ${stdout} ${stderr}`)), 15_000);
    void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      // The line printed, or the object of --json.
      const m = /dashboard: (http:\/\/\S+)/.exec(stdout) ?? /^\{"url":"(http:\/\/[^"]+)"/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, stdout: () => stdout, stderr: () => stderr, exited });
      }
    });
  });
}

/** A GET with a chosen Host header (fetch does not let one set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { Host: host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('pulse-streaming ui', () => {
  it('serves the dashboard of --redis on 127.0.0.1 and stops on Ctrl-C', async () => {
    const redis = new Redis(sharedUrl());
    const stream = new Stream(uniqueName('ui'), redis);
    await stream.add('e', 'x');
    redis.disconnect();
    const ui = await startUi(['--redis', sharedUrl(), 'ui', '--port', '0']);
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const overview = (await (await fetch(`${ui.url}api/overview?q=${encodeURIComponent(stream.name)}`)).json()) as {
      streams: { name: string; length: number }[];
    };
    expect(overview.streams.map((s) => [s.name, s.length])).toEqual([[stream.name, 1]]);
    expect(await (await fetch(`${ui.url}api/config`)).json()).toEqual({ readOnly: false, tokenRequired: false });
    // DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host.
    expect(await getWithHost(`${ui.url}api/overview`, 'evil.example:7400')).toBe(421);
    expect(await getWithHost(`${ui.url}api/config`, 'localhost')).toBe(200);
    ui.child.kill('SIGINT');
    expect(await ui.exited).toBe(0);
  });

  it('starts the throwaway redis-server without --redis, and passes --read-only and --token on', async () => {
    const ui = await startUi(['ui', '--port', '0', '--read-only', '--token', 'abc']);
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=abc$/);
    expect(ui.stderr()).toContain('throwaway redis-server');
    const base = ui.url.replace(/#.*$/, '');
    expect(await (await fetch(`${base}api/config`)).json()).toEqual({ readOnly: true, tokenRequired: true });
    expect(await (await fetch(`${base}api/overview`)).json()).toMatchObject({ total: 0, streams: [] });
    ui.child.kill('SIGINT');
    expect(await ui.exited).toBe(0);
  });

  it('takes the token from PULSE_DASHBOARD_TOKEN (a command line is visible to every user: ps)', async () => {
    const ui = await startUi(['--redis', sharedUrl(), 'ui', '--port', '0'], { PULSE_DASHBOARD_TOKEN: 'from-env' });
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=from-env$/);
    const base = ui.url.replace(/#.*$/, '');
    expect(await (await fetch(`${base}api/config`)).json()).toEqual({ readOnly: false, tokenRequired: true });
    ui.child.kill('SIGINT');
    expect(await ui.exited).toBe(0);
  });

  it('on --host 0.0.0.0, prints a URL that opens here (127.0.0.1), not 0.0.0.0; one JSON object with --json', async () => {
    const ui = await startUi(['--redis', sharedUrl(), '--json', 'ui', '--host', '0.0.0.0', '--port', '0', '--token', 't']);
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=t$/);
    const port = Number(new URL(ui.url).port);
    expect(JSON.parse(ui.stdout().trim())).toEqual({
      url: ui.url,
      metrics: `http://127.0.0.1:${port}/metrics`,
      host: '0.0.0.0',
      port,
    });
    expect(await (await fetch(`${ui.url.replace(/#.*$/, '')}api/config`)).json()).toEqual({
      readOnly: false,
      tokenRequired: true,
    });
    await waitFor(() => /listening on every interface \(0\.0\.0\.0\)/.test(ui.stderr()), { what: 'the note' });
    ui.child.kill('SIGINT');
    expect(await ui.exited).toBe(0);
  });

  it('beyond loopback, answers to IP addresses, this machine and --allowed-host names only (DNS rebinding)', async () => {
    const ui = await startUi([
      '--redis',
      sharedUrl(),
      'ui',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--allowed-host',
      'dash.example',
    ]);
    const url = `${ui.url.replace(/#.*$/, '')}api/config`;
    const port = new URL(url).port;
    // A name someone else points at this machine: their page would read everything (reads need no token).
    expect(await getWithHost(url, `rebound.example:${port}`)).toBe(421);
    for (const host of [
      `127.0.0.1:${port}`,
      `10.1.2.3:${port}`,
      `[::1]:${port}`,
      `${hostname()}:${port}`,
      `dash.example:${port}`,
    ])
      expect(await getWithHost(url, host), host).toBe(200);
    ui.child.kill('SIGINT');
    expect(await ui.exited).toBe(0);
  });

  it('outlives a Redis restart: errors while Redis is away, figures again once it is back', async () => {
    const server = await RedisServer.start({ args: ['--appendonly', 'yes'] });
    try {
      const redis = new Redis(server.url);
      await new Stream('kept', redis).add('e', 'x');
      redis.disconnect();
      const ui = await startUi(['--redis', server.url, 'ui', '--port', '0']);
      const overview = () => fetch(`${ui.url}api/overview`);
      expect(((await (await overview()).json()) as { total: number }).total).toBe(1);
      await server.kill('SIGKILL');
      const down = await overview();
      expect(down.status).toBe(500);
      await server.restart();
      await waitFor(async () => (await overview()).status === 200, { timeout: 10_000, what: 'the dashboard back' });
      expect(((await (await overview()).json()) as { total: number }).total).toBe(1);
      ui.child.kill('SIGINT');
      expect(await ui.exited).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('refuses a bad port as a usage error', async () => {
    const child = spawn(process.execPath, [MAIN, 'ui', '--port', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    expect(await new Promise((resolve) => child.on('close', resolve))).toBe(2);
    expect(stderr).toContain('--port');
  });
});
