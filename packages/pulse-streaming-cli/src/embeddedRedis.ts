/**
 * A throwaway `redis-server` for when the user names no server: started from
 * PATH on a free port in a temp dir without persistence, and removed on exit
 * (also on Ctrl-C/SIGTERM), killed by its own pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors.js';

/** One line on how to get a server, shown when `redis-server` is not on PATH. */
export const INSTALL_HINT =
  'redis-server was not found on PATH: install it (Debian/Ubuntu: sudo apt-get install redis-server; ' +
  'macOS: brew install redis; Docker: docker run -p 6379:6379 redis) ' +
  'or use an existing server with --redis redis://host:6379 or REDIS_URL';

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when the server on `port` answers PING, over a raw socket. */
function pings(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    let out = '';
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('data', (d) => {
      out += d.toString();
      if (out.includes('\r\n')) done(out.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
  });
}

/** A running throwaway server. `stop()` kills it and removes its directory. */
export class EmbeddedRedis {
  readonly #proc: ChildProcess;
  readonly #dir: string;
  #stopped = false;

  private constructor(
    readonly port: number,
    proc: ChildProcess,
    dir: string,
  ) {
    this.#proc = proc;
    this.#dir = dir;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Process id of the server. */
  get pid(): number | undefined {
    return this.#proc.pid;
  }

  /**
   * Starts a server from PATH on a free port; retries a few ports if one is
   * taken between choosing and binding it.
   * @throws CliError with {@link INSTALL_HINT} when `redis-server` is not on PATH.
   */
  static async start(): Promise<EmbeddedRedis> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await EmbeddedRedis.#startOnce(await freePort());
      } catch (err) {
        if (err instanceof CliError) throw err;
        lastError = err;
      }
    }
    throw new CliError(`could not start redis-server: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  static async #startOnce(port: number): Promise<EmbeddedRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-cli-redis-'));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'];
    const proc = spawn('redis-server', [...args, '--protected-mode', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const server = new EmbeddedRedis(port, proc, dir);
    let output = '';
    proc.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    let exited = false;
    // 'close', not 'exit': after its last stderr line is read, the one the error below shows.
    proc.on('close', () => {
      exited = true;
    });
    try {
      await new Promise<void>((resolve, reject) => {
        proc.once('error', reject);
        proc.once('spawn', resolve);
      });
    } catch (err) {
      server.stopSync();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(INSTALL_HINT);
      throw err;
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) {
        server.stopSync();
        const last = output.trim().split('\n').pop() ?? '';
        throw new Error(`redis-server exited at start${last ? `: ${last}` : ''}`);
      }
      if (await pings(port, 500)) return server;
      await new Promise((r) => setTimeout(r, 20));
    }
    server.stopSync();
    throw new Error('redis-server did not answer within 10 s');
  }

  /** Kills the server (SIGKILL: nothing to save) and waits for it to exit, then removes its directory. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    const proc = this.#proc;
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.stopSync();
  }

  /** Kills the server and removes its directory without waiting: safe in a process `exit` handler. */
  stopSync(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const proc = this.#proc;
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
