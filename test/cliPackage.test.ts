/**
 * The CLI as npm ships it: `npm pack` of packages/pulse-streaming-cli,
 * unpacked alone (no node_modules anywhere above it), runs every command from
 * its bundle: the library, ioredis and commander are inside `dist/main.js`
 * and its chunks, the tracing chunk and the dashboard's front end beside them
 * (scripts/build-cli.mjs). A module the bundle left outside would fail here
 * with ERR_MODULE_NOT_FOUND, as it would for a user whose npm hoisted it away.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT } from './support/cli.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';

let dir: string;
let main: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pulse-cli-pack-'));
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: join(ROOT, 'packages/pulse-streaming-cli'),
      encoding: 'utf8',
    }),
  );
  execFileSync('tar', ['-xzf', join(dir, packed[0].filename), '-C', dir]);
  main = join(dir, 'package/dist/main.js');
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed CLI, without any installed dependency', () => {
  it('has nothing to resolve: no node_modules next to it or above it', () => {
    for (let d = join(dir, 'package'); d !== '/'; d = join(d, '..')) expect(existsSync(join(d, 'node_modules')), d).toBe(false);
  });

  it('depends on the library and ioredis only (README: for the ./dashboard export; the command needs neither)', () => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package/package.json'), 'utf8')) as { dependencies?: object };
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual(['ioredis', 'pulse-streaming']);
  });

  it('ships only modules its command, the demo worker or the ./dashboard export load', () => {
    const pkg = join(dir, 'package');
    const imports = /(?:\bfrom\s*|\bimport\s*\(\s*)["'](\.\.?\/[^"']+)["']/g;
    const loaded = new Set<string>();
    for (const queue = ['dist/main.js', 'dist/demoWorker.js', 'dist/dashboard/index.js']; queue.length > 0; ) {
      const file = queue.pop() as string;
      if (loaded.has(file)) continue;
      loaded.add(file);
      for (const m of readFileSync(join(pkg, file), 'utf8').matchAll(imports))
        queue.push(normalize(join(dirname(file), m[1] as string)));
    }
    const shipped = (readdirSync(join(pkg, 'dist'), { recursive: true }) as string[])
      .map((f) => `dist/${f}`)
      .filter((f) => f.endsWith('.js') && !f.startsWith('dist/dashboard-ui/'));
    // tsc's build of the commands and the demo (inside the bundle) shipped beside it: 89 kB, one
    // module importing devDependencies (outside trial).
    expect(shipped.filter((f) => !loaded.has(f))).toEqual([]);
  });

  it('prints its version, adds an event and tails it back', async () => {
    const version = (JSON.parse(readFileSync(join(dir, 'package/package.json'), 'utf8')) as { version: string }).version;
    const v = await cli(['--version'], { main });
    expect(v.stderr).toBe('');
    expect(v.stdout.trim()).toBe(version);
    const name = uniqueName('clipack');
    const added = await cli(['add', name, 'created', '{"id":1}', '--header', 'tenant=acme'], { main });
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const tail = await cli(['tail', name, '--from', 'oldest', '--count', '1', '--json'], { main });
    expect(tail.code).toBe(0);
    expect(JSON.parse(tail.stdout)).toMatchObject({
      id: added.stdout.trim(),
      event: 'created',
      payload: '{"id":1}',
      headers: { tenant: 'acme' },
    });
  });

  it('runs the demo on a throwaway redis-server (README: `npx pulse-streaming-cli demo`, without a clone)', async () => {
    const r = await cli(['demo', '--duration', '2', '--rate', '50', '--json'], { main, embedded: true, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ published: 100, handledUnique: 100, readerReceived: 100, lost: 0, ok: true });
  }, 90_000);

  it('serves the dashboard page and its front end from the package', async () => {
    const child = spawn(process.execPath, [main, '--redis', sharedUrl(), 'ui', '--port', '0'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const url = await waitFor(() => /dashboard: (http:\/\/\S+)/.exec(out)?.[1], { timeout: 15_000, what: 'the printed URL' });
      expect(await (await fetch(url)).text()).toContain('<title>pulse-streaming');
      const app = await fetch(new URL('assets/app.js', url));
      expect(app.status).toBe(200);
      expect((await app.text()).length).toBeGreaterThan(1000);
      child.kill('SIGINT');
      // `ui` runs until stopped: Ctrl-C is its normal end (README: exit 0).
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
