/**
 * Runs the real `pulse-streaming` binary (`node packages/pulse-streaming-cli/dist/main.js`)
 * for the CLI tests: a child process with piped (not TTY) stdin, stdout and
 * stderr, or under `script` for a pseudo-terminal.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedUrl } from './clients.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'packages/pulse-streaming-cli/dist/main.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Use the embedded default: no --redis and no REDIS_URL. */
  embedded?: boolean;
  /** The Redis URL to pass with --redis (default: the shared test server). */
  redis?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Written to stdin, which is then closed (default: stdin is /dev/null). */
  input?: string | Buffer;
  /** Runs under `script`, so stdin and stdout are a terminal. */
  tty?: boolean;
  /**
   * Once stdout shows `prompt`, writes `answer` to stdin and closes it (before
   * that stdin stays open: `script` may end the program when its stdin ends).
   */
  answer?: { readonly prompt: string; readonly answer: string };
  /** The command's file (default: the repository's build, {@link MAIN}). */
  main?: string;
  /** Called once the process is running (for live commands), with a function that signals it. */
  started?: (signal: (s: NodeJS.Signals) => void) => Promise<void>;
}

/**
 * Compiles the CLI when its sources are newer than its build, so a run of one
 * test file tests the current source. Not under `npm test`, whose pretest
 * just built every package. Test files run in parallel: one compiles while
 * the others wait (a lock directory), and a build that is current is not
 * redone, since a CLI test of another file may be running the built files.
 */
export function buildCli(): void {
  if (process.env.npm_lifecycle_event === 'test') return;
  const lock = join(tmpdir(), `pulse-cli-build-${createHash('sha1').update(ROOT).digest('hex').slice(0, 12)}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) throw err;
      // Another test file compiles: wait for it (synchronously, as the build does).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    if (newestSource() > builtAt()) {
      execFileSync('npx', ['tsc', '-p', 'packages/pulse-streaming-cli/tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Newest modification time (ms) of the CLI's sources. */
function newestSource(): number {
  const src = join(ROOT, 'packages/pulse-streaming-cli/src');
  let newest = 0;
  for (const f of readdirSync(src, { recursive: true, encoding: 'utf8' }))
    newest = Math.max(newest, statSync(join(src, f)).mtimeMs);
  return newest;
}

/** When the CLI was last compiled (0: never). */
function builtAt(): number {
  try {
    return statSync(MAIN).mtimeMs;
  } catch {
    return 0;
  }
}

/** Runs the built CLI; kills it after `timeoutMs`. */
export function cli(args: string[], options: RunOptions = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
  delete env.FORCE_COLOR;
  const argv = options.embedded ? args : ['--redis', options.redis ?? sharedUrl(), ...args];
  if (options.embedded) delete env.REDIS_URL;
  const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const [file, fileArgs] = options.tty
    ? ['script', ['-qec', [process.execPath, options.main ?? MAIN, ...argv].map(quote).join(' '), '/dev/null']]
    : [process.execPath, [options.main ?? MAIN, ...argv]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs as string[], {
      env,
      stdio: [options.input === undefined && options.answer === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let answered = false;
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (options.answer && !answered && stdout.includes(options.answer.prompt)) {
        answered = true;
        child.stdin?.end(options.answer.answer);
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    // Generous: on a loaded 2-core machine one run can take several seconds.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : null), stdout, stderr: signal ? `${stderr}[signal ${signal}]` : stderr });
    });
    options
      .started?.((s) => child.kill(s))
      .catch((err: unknown) => {
        child.kill('SIGKILL');
        reject(err);
      });
  });
}

export const noStack = (stderr: string): boolean => !/\n\s+at /.test(stderr);
export const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');
