/**
 * Builds and runs the Go interop program (interop/go) against real Go Pulse
 * releases, one binary per version pinned in interop/go/versions/<version>/.
 *
 * Binaries are cached in the OS temp dir under a hash of everything that
 * goes into them (sources, go.mod, go.sum, build tags, Go version), so a
 * test run builds each version at most once and later runs reuse it. A
 * version that cannot be built (no Go toolchain, the module proxy refuses
 * the module, a compile error) is reported with the reason, never dropped.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'interop', 'go');
const VERSIONS_DIR = join(GO_DIR, 'versions');
/** Where Debian-less machines keep the official toolchain; .ci/run adds it to PATH too. */
const FALLBACK_GO = '/usr/local/go/bin/go';
/** The first build downloads Go Pulse and its dependencies through the module proxy. */
const BUILD_TIMEOUT_MS = 8 * 60_000;

/**
 * What a pinned version is known to do differently (versions/<version>/expect.json),
 * so the tests check each version's documented behaviour.
 */
export interface GoTraits {
  /**
   * Go Pulse v1.10+: a lifecycle record per stream name. Its readers refuse a
   * stream that no Go producer or sink has opened, and after its `Destroy` the
   * name's next incarnation lives at `pulse:stream:<name>:generation:<n>`.
   */
  readonly lifecycle: boolean;
}

/** One pinned Go Pulse version and what became of its build. */
export type GoVersion =
  | { readonly label: string; readonly ok: true; readonly bin: string; readonly traits: GoTraits }
  | { readonly label: string; readonly ok: false; readonly reason: string };

function traitsOf(label: string): GoTraits {
  const file = join(VERSIONS_DIR, label, 'expect.json');
  const raw = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<GoTraits>) : {};
  return { lifecycle: raw.lifecycle === true };
}

/** The `go` command: on PATH, else the official install dir, else undefined. */
export function findGo(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'go');
    if (isExecutable(candidate)) return candidate;
  }
  return isExecutable(FALLBACK_GO) ? FALLBACK_GO : undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeout?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, timeout: opts.timeout ?? 30_000, maxBuffer: 16 * 1024 * 1024, env: goEnv() },
      (err, stdout, stderr) => {
        if (err) reject(Object.assign(err, { stderr }));
        else resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * The environment for `go`: as is, but for a machine without HOME (a bare CI
 * runner), where `go` has no default build or module cache and would fail.
 */
function goEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (!env.HOME && !env.XDG_CACHE_HOME && !env.GOCACHE) env.GOCACHE = join(tmpdir(), 'pulse-interop-go', 'gocache');
  if (!env.HOME && !env.GOPATH) env.GOPATH = join(tmpdir(), 'pulse-interop-go', 'gopath');
  return env;
}

/** The first lines of a failed command's stderr: the reason a version is skipped. */
function reasonOf(err: unknown): string {
  const stderr = (err as { stderr?: string }).stderr?.trim();
  const text = stderr || (err instanceof Error ? err.message : String(err));
  // "go: downloading ..." lines say what it tried, not why it failed.
  const lines = text.split('\n').filter((l) => !l.startsWith('go: downloading'));
  return lines.slice(0, 4).join(' | ');
}

/**
 * Builds the interop program for every pinned version (or reuses a cached
 * binary). Resolves to one entry per version, in version-dir order; with no
 * Go toolchain, to `undefined` and the reason.
 */
export async function prepareGoInterop(): Promise<{ go: string | undefined; reason?: string; versions: GoVersion[] }> {
  const go = findGo();
  if (go === undefined) {
    return { go, reason: `no Go toolchain: 'go' is neither on PATH nor at ${FALLBACK_GO}`, versions: [] };
  }
  let goVersion: string;
  try {
    goVersion = (await run(go, ['version'])).stdout.trim();
  } catch (err) {
    return { go: undefined, reason: `'${go} version' failed: ${reasonOf(err)}`, versions: [] };
  }
  const sources = readdirSync(GO_DIR)
    .filter((f) => f.endsWith('.go'))
    .sort();
  const labels = readdirSync(VERSIONS_DIR)
    .filter((d) => existsSync(join(VERSIONS_DIR, d, 'go.mod')))
    .sort();
  const versions: GoVersion[] = [];
  // One at a time: two builds in parallel on 2 cores take as long and
  // download the same dependencies twice.
  for (const label of labels) versions.push(await buildVersion(go, goVersion, label, sources));
  return { go, versions };
}

async function buildVersion(go: string, goVersion: string, label: string, sources: string[]): Promise<GoVersion> {
  const vdir = join(VERSIONS_DIR, label);
  const pinned = ['go.mod', 'go.sum'].filter((f) => existsSync(join(vdir, f)));
  const tagsFile = join(vdir, 'build-tags');
  const tags = existsSync(tagsFile) ? readFileSync(tagsFile, 'utf8').trim() : '';
  const hash = createHash('sha256').update(goVersion).update(`\0${tags}\0`);
  for (const f of sources) hash.update(`${f}\0`).update(readFileSync(join(GO_DIR, f)));
  for (const f of pinned) hash.update(`${f}\0`).update(readFileSync(join(vdir, f)));
  const cacheDir = join(tmpdir(), 'pulse-interop-go');
  const bin = join(cacheDir, `pulse-interop-${label}-${hash.digest('hex').slice(0, 16)}`);
  if (isExecutable(bin)) return { label, ok: true, bin, traits: traitsOf(label) };

  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'pulse-interop-build-'));
  try {
    for (const f of sources) copyFileSync(join(GO_DIR, f), join(work, f));
    for (const f of pinned) copyFileSync(join(vdir, f), join(work, f));
    const tmpBin = `${bin}.${process.pid}.tmp`;
    // A pinned go.sum is the law (-mod=readonly); a version pinned without one
    // gets it from the checksum database on each first build (-mod=mod, in
    // the temp copy only), until someone commits it.
    const args = ['build', pinned.includes('go.sum') ? '-mod=readonly' : '-mod=mod', '-o', tmpBin];
    if (tags !== '') args.push('-tags', tags);
    args.push('.');
    await run(go, args, { cwd: work, timeout: BUILD_TIMEOUT_MS });
    // Atomic: a concurrent run never sees a half-written binary.
    renameSync(tmpBin, bin);
    // Older builds of this version are dead weight (25 MB each).
    const prefix = `pulse-interop-${label}-`;
    for (const f of readdirSync(cacheDir)) {
      if (f.startsWith(prefix) && join(cacheDir, f) !== bin && !f.endsWith('.tmp')) rmSync(join(cacheDir, f), { force: true });
    }
    return { label, ok: true, bin, traits: traitsOf(label) };
  } catch (err) {
    return { label, ok: false, reason: `go build of Go Pulse ${label} failed: ${reasonOf(err)}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One JSON line the Go program printed. `payload` is base64 (Go's []byte), null for nil. */
export interface GoLine {
  readonly op: 'ready' | 'added' | 'event' | 'done' | 'timeout' | 'destroyed';
  readonly id?: string;
  readonly stream?: string;
  readonly sink?: string;
  readonly name: string;
  readonly topic: string;
  readonly payload: string | null;
  readonly createdAtMs?: number;
  readonly got?: number;
}

/** The bytes of a line's payload. */
export function payloadOf(l: GoLine): Buffer {
  return Buffer.from(l.payload ?? '', 'base64');
}

/** An event for the Go producer's stdin. */
export interface GoAddSpec {
  readonly name: string;
  readonly topic?: string;
  readonly payload: Buffer;
}

/** A running Go program: its output lines as they come, and how it ended. */
export interface GoProcess {
  readonly lines: GoLine[];
  /** Resolves when a line with `op` has been printed; rejects if the program exits first. */
  waitForOp(op: GoLine['op'], count?: number): Promise<GoLine[]>;
  /** Resolves with all lines when the program exits 0; rejects with its stderr otherwise. */
  readonly done: Promise<GoLine[]>;
  /** With `hold`: closes its stdin, so it closes its reader or sink and exits. */
  release(): void;
  /** Kills the program (only this one, by its own handle). */
  kill(): void;
}

/**
 * Starts the Go program `bin` with `args`, writing `stdin` lines (JSON) to it.
 * With `hold`, stdin stays open until `release()` (pass `-hold` in `args` too).
 */
export function startGo(bin: string, args: string[], stdin?: readonly GoAddSpec[], hold = false): GoProcess {
  const proc: ChildProcess = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: GoLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let partial = '';
  let exited = false;
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    let nl = partial.indexOf('\n');
    while (nl >= 0) {
      lines.push(JSON.parse(partial.slice(0, nl)) as GoLine);
      partial = partial.slice(nl + 1);
      nl = partial.indexOf('\n');
    }
    for (const w of waiters) w();
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<GoLine[]>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      exited = true;
      for (const w of waiters) w();
      if (code === 0) resolve(lines);
      else {
        const last = lines.at(-1);
        const what = last?.op === 'timeout' ? `timed out after ${last.got ?? 0} events` : `exit ${code ?? signal}`;
        reject(new Error(`Go ${args.join(' ')}: ${what}: ${stderr.trim()}`));
      }
    });
  });
  // Callers that only await waitForOp must not leave an unhandled rejection behind.
  done.catch(() => {});
  if (stdin) {
    for (const s of stdin) {
      proc.stdin?.write(`${JSON.stringify({ name: s.name, topic: s.topic ?? '', payload: s.payload.toString('base64') })}\n`);
    }
  }
  // A program that exited early makes writes to its stdin fail: its exit says why.
  proc.stdin?.on('error', () => {});
  if (!hold) proc.stdin?.end();
  return {
    lines,
    done,
    release() {
      proc.stdin?.end();
    },
    waitForOp(op, count = 1) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines.filter((l) => l.op === op);
          if (found.length >= count) {
            waiters.delete(check);
            resolve(found);
          } else if (exited) {
            waiters.delete(check);
            reject(new Error(`Go ${args.join(' ')}: exited with ${found.length} of ${count} '${op}' lines: ${stderr.trim()}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/** Runs the Go program to its end and returns its lines of `op`. */
export async function runGo(bin: string, args: string[], stdin?: readonly GoAddSpec[], op?: GoLine['op']): Promise<GoLine[]> {
  const all = await startGo(bin, args, stdin).done;
  return op === undefined ? all : all.filter((l) => l.op === op);
}
