/**
 * Sink consumers in child processes, for tests that kill them with real
 * signals: the library (the build, or compiled once per test file into a
 * private folder) bundled with each client for the children
 * (`useCompiledLibrary`), a `Consumer` reading a child's lines, and `setup`,
 * a private redis-server with helpers to start children and read the sink's
 * bookkeeping.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { afterAll, beforeAll, type TestContext } from 'vitest';
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, uniqueName, waitFor } from './clients.js';
import { RedisServer } from './redisServer.js';

export const GRACE = 400;
export const WAIT = { timeout: 10_000 };
const REPO = resolve(import.meta.dirname, '../..');
const SCRIPT = join(REPO, 'test/support/consumerProcess.mjs');

/** The library compiled once into a private folder, so children run it without a TypeScript loader. */
let libDir: string;
let lib: string;
/** The children's entry points: `lib` and one client, bundled into one file per client (in `bundleDir`). */
let bundleDir: string;
const bundles = new Map<ClientKind, string>();

/** The repository's build of the library, current when the build stamp says so. */
const BUILT = join(REPO, 'packages/pulse-streaming/dist/esm/index.js');

/**
 * The library for the children of this test file's tests: the repository's
 * build when it is current (`npm test`'s pretest just made it: compiling
 * again cost 8 s of the suite's CPU), else compiled into a private folder
 * (removed after them), so that a run of this file alone tests the current
 * source without rebuilding files other test files may be running.
 */
export function useCompiledLibrary(): void {
  beforeAll(async () => {
    const current = spawnSync(process.execPath, [join(REPO, 'scripts/build-stamp.mjs'), 'check'], { cwd: REPO });
    if (current.status === 0 && existsSync(BUILT)) lib = BUILT;
    else compileLibrary();
    await bundleForChildren();
  }, 60_000);
  afterAll(() => {
    if (libDir) rmSync(libDir, { recursive: true, force: true });
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  });
}

/**
 * Bundles `lib` with each client (esbuild, ~0.03 s): a child then loads one
 * file instead of the library's and the client's modules one by one, which
 * cost ~0.2 s of CPU of each child's ~0.35 s (18 children in
 * sinkProcesses.test.ts). The same code runs: the library as built, the
 * clients of node_modules.
 */
async function bundleForChildren(): Promise<void> {
  bundleDir = mkdtempSync(join(tmpdir(), 'pulse-sink-bundle-'));
  const clients: Record<ClientKind, string> = {
    ioredis: "export { Redis } from 'ioredis';",
    'node-redis': "export { createClient } from 'redis';",
  };
  for (const [kind, client] of Object.entries(clients) as Array<[ClientKind, string]>) {
    const outfile = join(bundleDir, `${kind}.mjs`);
    await build({
      stdin: { contents: `export { Stream } from ${JSON.stringify(lib)};\n${client}\n`, resolveDir: REPO, loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outfile,
      // The clients are CommonJS: their require() of Node's modules needs a real require.
      banner: {
        js: "import { createRequire as __pulseRequire } from 'node:module'; const require = __pulseRequire(import.meta.url);",
      },
      logLevel: 'error',
    });
    bundles.set(kind, outfile);
  }
}

/** Compiles the library's current source into a private folder (`lib`). */
function compileLibrary(): void {
  libDir = mkdtempSync(join(tmpdir(), 'pulse-sink-lib-'));
  symlinkSync(join(REPO, 'node_modules'), join(libDir, 'node_modules'), 'dir');
  writeFileSync(join(libDir, 'package.json'), '{"type":"module"}\n');
  const outDir = join(libDir, 'dist');
  const r = spawnSync(
    process.execPath,
    [
      join(REPO, 'node_modules/typescript/bin/tsc'),
      '-p',
      'packages/pulse-streaming/tsconfig.esm.json',
      '--outDir',
      outDir,
      '--declaration',
      'false',
      '--declarationMap',
      'false',
      '--sourceMap',
      'false',
    ],
    { cwd: REPO, encoding: 'utf8' },
  );
  lib = join(outDir, 'index.js');
  if (!existsSync(lib)) throw new Error(`library build failed: ${r.stdout}${r.stderr}`);
}

export interface Msg {
  type: 'ready' | 'recv' | 'ack' | 'error';
  consumer?: string;
  id?: string;
  n?: number;
  p?: string;
  err?: string;
}

export class Consumer {
  readonly msgs: Msg[] = [];
  readonly exited: Promise<void>;
  readonly stderr: string[] = [];

  constructor(readonly proc: ChildProcess) {
    const rl = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      try {
        this.msgs.push(JSON.parse(line) as Msg);
      } catch {
        this.stderr.push(line);
      }
    });
    proc.stderr?.on('data', (d) => this.stderr.push(String(d)));
    // 'close': after its last line is read ('exit' may come before).
    this.exited = new Promise((r) => proc.once('close', () => r()));
  }

  get consumer(): string | undefined {
    return this.msgs.find((m) => m.type === 'ready')?.consumer;
  }
  get received(): Msg[] {
    return this.msgs.filter((m) => m.type === 'recv');
  }
  get acked(): Set<string> {
    return new Set(this.msgs.filter((m) => m.type === 'ack').map((m) => m.id as string));
  }
  get errors(): Msg[] {
    return this.msgs.filter((m) => m.type === 'error');
  }
  /** Received and not acked (yet). */
  get unacked(): string[] {
    const acked = this.acked;
    return [...new Set(this.received.map((m) => m.id as string))].filter((id) => !acked.has(id));
  }
  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  /**
   * Freezes the process (SIGSTOP) and waits until the kernel says it is stopped: whatever it had
   * written to Redis is in Redis' socket buffers then, and it writes nothing more until `resume()`.
   */
  async freeze(): Promise<void> {
    this.proc.kill('SIGSTOP');
    // Field 3 of /proc/PID/stat, after the parenthesised command name: 'T' once stopped.
    const state = () => readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    await waitFor(() => state() === 'T', { ...WAIT, what: 'consumer process stopped' });
  }
  resume(): void {
    this.proc.kill('SIGCONT');
  }
  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.alive()) return;
    this.proc.kill(signal);
    await this.exited;
  }
}

export async function setup(ctx: TestContext, kind: ClientKind) {
  const server = await RedisServer.start();
  const children: Consumer[] = [];
  const c = await connect(kind, server.url);
  ctx.onTestFinished(async () => {
    await Promise.all(children.map((ch) => ch.kill('SIGKILL')));
    await c.close();
    await server.stop();
  });
  const streamName = uniqueName('procs');
  return {
    server,
    c,
    stream: new Stream(streamName, c.redis, { maxLen: 0 }),
    async start(options: { ackDelayMs: number; clockSkewMs?: number; graceMs?: number; blockMs?: number }): Promise<Consumer> {
      const cfg = {
        lib: bundles.get(kind) ?? lib,
        url: server.url,
        kind,
        stream: streamName,
        sink: 'sink',
        graceMs: GRACE,
        blockMs: 100,
        ...options,
      };
      const child = new Consumer(spawn(process.execPath, [SCRIPT, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] }));
      children.push(child);
      await waitFor(() => child.consumer !== undefined || !child.alive(), { ...WAIT, what: 'consumer process ready' });
      if (!child.consumer) throw new Error(`consumer process failed: ${child.stderr.join('')}`);
      return child;
    },
    async consumers(key: string): Promise<string[]> {
      try {
        return ((await c.cmd('XINFO', 'CONSUMERS', key, 'sink')) as unknown[]).map((x) => {
          if (Array.isArray(x)) return String(x[x.indexOf('name') + 1]);
          return String((x as { name: unknown }).name);
        });
      } catch {
        return [];
      }
    },
    async pending(key: string): Promise<number> {
      return Number(((await c.cmd('XPENDING', key, 'sink')) as unknown[])[0]);
    },
    async time(): Promise<number> {
      const [sec, usec] = (await c.cmd('TIME')) as [string, string];
      return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    },
    async score(key: string, consumer: string): Promise<number | undefined> {
      const v = await c.cmd('ZSCORE', `{${key}}:sink:sink:consumers`, consumer);
      return v === null || v === undefined ? undefined : Number(v);
    },
    /** An instance's last liveness beat (sink-wide since issue 20, Redis server ms). */
    async beat(consumer: string): Promise<number | undefined> {
      const v = await c.cmd('ZSCORE', '{pulse:sink:sink}:instances', consumer);
      return v === null || v === undefined ? undefined : Number(v);
    },
  };
}
