// `npm test` builds first (its pretest), but only when an input of the build
// changed since the last build finished, as make does: CI and the README's
// quick start (`npm run demo` builds) had just built, and building again took
// 10 of `npm test`'s 180 s. `write` records a finished build (run by `npm run
// build`); `check` exits 0 when the last build is newer than every input and
// its outputs exist. The stamp carries the time the build started (`start`):
// a file saved while a build ran is newer than it. Inputs: the packages' sources, manifests and tsconfigs,
// the build scripts, the lock file; directories count too (a deleted file
// changes its directory). The stamp lives in node_modules: `npm ci` drops it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = join(ROOT, 'node_modules/.cache/pulse-streaming-build-stamp');
const INPUTS = [
  'packages/pulse-streaming/src',
  'packages/pulse-streaming/package.json',
  'packages/pulse-streaming/tsconfig.esm.json',
  'packages/pulse-streaming/tsconfig.cjs.json',
  'packages/pulse-streaming-cli/src',
  'packages/pulse-streaming-cli/package.json',
  'packages/pulse-streaming-cli/tsconfig.json',
  'packages/pulse-streaming-cli/tsconfig.dashboard.json',
  'scripts',
  'tsconfig.base.json',
  'package.json',
  'package-lock.json',
];
const OUTPUTS = ['packages/pulse-streaming/dist', 'packages/pulse-streaming-cli/dist'];

/** The newest modification time under `path` (files and directories), 0 when it is missing. */
function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

const PENDING = `${STAMP}.started`;
const mode = process.argv[2];
if (mode === 'start') {
  mkdirSync(dirname(STAMP), { recursive: true });
  rmSync(STAMP, { force: true });
  writeFileSync(PENDING, `${Date.now()}\n`);
} else if (mode === 'write') {
  // Without a start (a workspace built alone), nothing is recorded: the next test run builds.
  if (!existsSync(PENDING)) process.exit(0);
  const started = new Date(Number(readFileSync(PENDING, 'utf8')));
  writeFileSync(STAMP, `${started.toISOString()}\n`);
  utimesSync(STAMP, started, started);
  rmSync(PENDING, { force: true });
} else if (mode === 'check') {
  const fresh =
    existsSync(STAMP) &&
    OUTPUTS.every((p) => existsSync(join(ROOT, p))) &&
    Math.max(...INPUTS.map((p) => newest(join(ROOT, p)))) < statSync(STAMP).mtimeMs;
  process.exit(fresh ? 0 : 1);
} else {
  console.error('usage: node scripts/build-stamp.mjs start|write|check');
  process.exit(2);
}
