/**
 * A user's project with the library as npm installs it: `npm pack` of the
 * built package unpacked into `node_modules/pulse-streaming` of a fresh ESM
 * project (`"type": "module"`), the Redis clients, Node's types and
 * OpenTelemetry beside it (symlinks to the repository's). For tests of what
 * the published build does that the sources cannot show: its two builds
 * (ESM and CommonJS) loaded together, its `.d.ts` under a user's compiler
 * options. The build must be current (`npm run build`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
const PKG = join(REPO, 'packages/pulse-streaming');

/** The repository's TypeScript compiler, run with node. */
export const TSC = join(REPO, 'node_modules/typescript/bin/tsc');

/** A packed-and-installed project in a temp dir. */
export interface PackedApp {
  readonly dir: string;
  /** Writes `text` to the file `name` of the project. */
  write(name: string, text: string): void;
  /** Runs `cmd` in the project (25 s at most): its exit status and its output, stdout then stderr. */
  run(cmd: string, args: string[]): { status: number | null; out: string };
  /** Removes the project. */
  remove(): void;
}

export function packedApp(prefix: string): PackedApp {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, encoding: 'utf8' }));
  const lib = join(dir, 'node_modules/pulse-streaming');
  mkdirSync(lib, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, packed[0].filename), '-C', lib, '--strip-components=1']);
  for (const dep of ['redis', '@redis', 'ioredis', '@types', '@opentelemetry']) {
    symlinkSync(join(REPO, 'node_modules', dep), join(dir, 'node_modules', dep), 'dir');
  }
  writeFileSync(join(dir, 'package.json'), '{ "name": "packed-app", "private": true, "type": "module" }\n');
  return {
    dir,
    write: (name, text) => writeFileSync(join(dir, name), text),
    run(cmd, args) {
      const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 25_000 });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
