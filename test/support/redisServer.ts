/**
 * Starts private `redis-server` processes for tests and benchmarks: free port,
 * temp dir, stopped by pid. Never touches a server it did not start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../packages/pulse-streaming-cli/src/embeddedRedis.js';

export interface RedisServerOptions {
  /**
   * Extra `redis-server` arguments, e.g. `['--appendonly', 'yes']`, or made
   * from the port (a cluster node's config file is named after it), so that a
   * start on another free port gets its own.
   */
  args?: string[] | ((port: number) => string[]);
  /** Keep the same port and dir across restarts (the default). */
  port?: number;
}

export { freePort };

/**
 * Sends one inline command over a raw socket: no client library involved.
 * Resolves to the reply line, or with `bulk` to the body of a bulk-string reply.
 * The default timeout is generous: with 1 s, a CLIENT KILL of a fault test
 * timed out in a loaded `npm test` on two cores (readerFaults, 2026-12-06);
 * probes of a server that may be down pass their own short timeout.
 */
export function rawCommand(port: number, line: string, timeoutMs = 5000, bulk = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = new Socket();
    let out = Buffer.alloc(0);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`timeout: ${line}`));
    }, timeoutMs);
    const finish = (v: string): void => {
      clearTimeout(t);
      s.end();
      resolve(v);
    };
    s.on('data', (d) => {
      out = Buffer.concat([out, d]);
      const text = out.toString('latin1');
      const eol = text.indexOf('\r\n');
      if (eol < 0) return;
      if (bulk && text.startsWith('$')) {
        const len = Number(text.slice(1, eol));
        if (len < 0) return finish('');
        if (out.length >= eol + 2 + len + 2) finish(out.subarray(eol + 2, eol + 2 + len).toString('utf8'));
        return;
      }
      finish(text.slice(0, eol));
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.connect(port, '127.0.0.1', () => s.write(`${line}\r\n`));
  });
}

export class RedisServer {
  readonly dir: string;
  #proc: ChildProcess | undefined;
  #paused = false;

  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'pulse-redis-'));
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    for (let attempt = 0; ; attempt++) {
      const port = options.port ?? (await freePort());
      const args = typeof options.args === 'function' ? options.args(port) : (options.args ?? []);
      const srv = new RedisServer(port, args);
      try {
        await srv.#spawn();
        return srv;
      } catch (err) {
        srv.#cleanupDir();
        if (attempt >= 4 || options.port !== undefined) throw err;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** True while the process has not exited. */
  get running(): boolean {
    const p = this.#proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  async #spawn(): Promise<void> {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        ...this.args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#proc = proc;
    let exited = false;
    let stderr = '';
    proc.stderr?.on('data', (d) => {
      stderr += d.toString();
    });
    // 'close': after its last stderr line is read, for the message below.
    proc.on('close', () => {
      exited = true;
    });
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('spawn', resolve);
    });
    try {
      await this.#started(
        proc,
        () => exited,
        () => stderr,
      );
    } catch (err) {
      // Whatever failed (an INFO timing out on a loaded machine too), the process goes with the
      // attempt: start() removes its dir and tries another port, and a server left running there
      // outlived the test run (an orphan in a deleted dir, seen after a loaded full run).
      proc.kill('SIGKILL');
      throw err;
    }
  }

  /** Waits until `proc` answers on this server's port as itself; throws when it exited, or after 10 s. */
  async #started(proc: ChildProcess, exited: () => boolean, stderr: () => string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited()) throw new Error(`redis-server exited at start: ${stderr()}`);
      let pong = false;
      try {
        pong = (await rawCommand(this.port, 'PING', 500)) === '+PONG';
      } catch {
        // not listening yet
      }
      if (pong) {
        // Another test's server may answer on this port (two free-port picks met, and ours then
        // fails to bind): a test would use it. A CI run's readerChurn got CLUSTERDOWN so.
        // The default timeout: it answered, and on a loaded machine 500 ms passed before the INFO
        // reply once (addOrder's restart, a full npm test run).
        const info = await rawCommand(this.port, 'INFO server', undefined, true);
        const pid = /process_id:(\d+)/.exec(info)?.[1];
        if (pid === String(proc.pid)) return;
        throw new Error(`port ${this.port} is another redis-server's (pid ${pid}), not ours (pid ${proc.pid})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('redis-server did not start in 10 s');
  }

  /** Sends a signal to the server process (SIGKILL, SIGTERM, ...) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    if (this.#paused) {
      proc.kill('SIGCONT');
      this.#paused = false;
    }
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  }

  /** Starts the server again on the same port and dir (AOF, if enabled, is replayed). */
  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    await this.#spawn();
  }

  pause(): void {
    this.#proc?.kill('SIGSTOP');
    this.#paused = true;
  }

  resume(): void {
    this.#proc?.kill('SIGCONT');
    this.#paused = false;
  }

  /** Kills client connections (`CLIENT KILL TYPE normal` or by a filter), as a network fault would. */
  async killClients(filter = 'TYPE normal'): Promise<string> {
    return rawCommand(this.port, `CLIENT KILL ${filter}`);
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    this.#cleanupDir();
  }

  #cleanupDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
