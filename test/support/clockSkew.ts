/**
 * Private redis-servers (and node child processes) whose wall clock is
 * skewed, and can be stepped at run time, by an LD_PRELOAD shim
 * (clockSkew.c, compiled with gcc when first needed). libfaketime (Debian
 * 0.9.10) cannot start Debian's redis-server (jemalloc: "Unexpected recursive
 * calls to clock_gettime()"), hence the shim. Monotonic clocks are untouched,
 * as with a real NTP step. The tests skip, saying why, without gcc.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, rawCommand } from './redisServer.js';

const here = dirname(fileURLToPath(import.meta.url));

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

let shim: string | undefined | null = null;
/** Path of the compiled shim, or undefined (with the reason in `skewSkipReason`). */
export function skewShim(): string | undefined {
  if (shim !== null) return shim;
  shim = undefined;
  if (!has('gcc')) {
    skewSkipReason = 'no gcc to build the clock shim: skipping clock-skew tests';
    return shim;
  }
  // One build per source text, kept in the temp dir and shared by the test processes and runs (a
  // dir per process was left in /tmp by each run): built under a name of this process, then renamed.
  const source = readFileSync(join(here, 'clockSkew.c'));
  const out = join(tmpdir(), `pulse-skew-shim-${createHash('sha256').update(source).digest('hex').slice(0, 16)}.so`);
  try {
    if (!existsSync(out)) {
      const building = `${out}.${process.pid}`;
      execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', building, join(here, 'clockSkew.c')]);
      renameSync(building, out);
    }
    shim = out;
  } catch (err) {
    skewSkipReason = `clock shim did not build: ${String(err)}`;
  }
  return shim;
}
export let skewSkipReason = '';

/** Environment that skews a child's wall clock by the ms in `file`. */
export function skewEnv(file: string): NodeJS.ProcessEnv {
  const so = skewShim();
  if (!so) throw new Error(skewSkipReason);
  return { ...process.env, LD_PRELOAD: so, PULSE_SKEW_FILE: file };
}

export class SkewedRedis {
  #proc: ChildProcess | undefined;
  readonly dir: string;
  readonly skewFile: string;

  private constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'pulse-skew-redis-'));
    this.skewFile = join(this.dir, 'skew');
  }

  /** Starts a redis-server whose clock is `skewMs` off the host's (+: ahead). */
  static async start(skewMs: number): Promise<SkewedRedis> {
    const srv = new SkewedRedis(await freePort());
    srv.setSkew(skewMs);
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(srv.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        srv.dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: skewEnv(srv.skewFile) },
    );
    srv.#proc = proc;
    let stderr = '';
    proc.stderr?.on('data', (d) => {
      stderr += d.toString();
    });
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('spawn', resolve);
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
      try {
        if ((await rawCommand(srv.port, 'PING', 500)) === '+PONG') break;
      } catch {}
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error('redis-server did not start');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return srv;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Sets the server clock's offset (ms) from now on: a negative change is a step back. */
  setSkew(ms: number): void {
    writeFileSync(this.skewFile, `${Math.round(ms)}\n`);
  }

  /** The server's clock (ms), read with TIME. */
  async time(): Promise<number> {
    const s = await rawCommand(this.port, 'EVAL "local t = redis.call(\'TIME\') return t[1] * 1000 + math.floor(t[2] / 1000)" 0');
    return Number(s.slice(1));
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    }
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

const REPO = join(here, '../..');
/** The built library (npm run build), for child processes. */
export const BUILT_LIB = join(REPO, 'packages/pulse-streaming/dist/esm/index.js');
export const CONSUMER_SCRIPT = join(REPO, 'test/support/consumerProcess.mjs');

/**
 * Starts test/support/consumerProcess.mjs (a sink instance that prints what it
 * receives), its wall clock skewed by the ms in `skewFile` when given.
 */
export function spawnConsumer(
  cfg: { url: string; kind: string; stream: string; sink: string; graceMs: number; ackDelayMs: number; blockMs?: number },
  skewFile?: string,
): ChildProcess {
  return spawn(process.execPath, [CONSUMER_SCRIPT, JSON.stringify({ lib: BUILT_LIB, blockMs: 100, ...cfg })], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: skewFile ? skewEnv(skewFile) : process.env,
  });
}

export const CHILD_SCRIPT = join(REPO, 'test/support/clockSkewChild.mjs');
/** Starts clockSkewChild.mjs, its wall clock skewed by the ms in `skewFile` when given. */
export function spawnChild(
  cfg: {
    url: string;
    kind: string;
    stream: string;
    sink: string;
    graceMs: number;
    mode: 'ack' | 'retry' | 'hold' | 'stuck';
    retryMs?: number;
  },
  skewFile?: string,
): ChildProcess {
  return spawn(process.execPath, [CHILD_SCRIPT, JSON.stringify({ lib: BUILT_LIB, ...cfg })], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: skewFile ? skewEnv(skewFile) : process.env,
  });
}

/** A file holding a clock offset (ms) for skewEnv, removed with its folder by the caller. */
export function skewFile(ms = 0): { file: string; set(ms: number): void; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-skew-app-'));
  const file = join(dir, 'skew');
  const set = (v: number) => writeFileSync(file, `${Math.round(v)}\n`);
  set(ms);
  return { file, set, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
