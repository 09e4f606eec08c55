// Builds the CLI package: its code and the dashboard's declarations at once
// (both read the library's built types, so the library is built first), then
// the command itself bundled, then the dashboard's front end. The front end's
// type check is `npm run typecheck`'s.
// Run from packages/pulse-streaming-cli (its `npm run build`).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { build } from 'esbuild';
import { tscAll } from './tsc-parallel.mjs';

rmSync('dist', { recursive: true, force: true });
await tscAll(['tsconfig.json', 'tsconfig.dashboard.json']);

// The command and the demo's worker process are bundled over tsc's main.js and demoWorker.js
// (library, ioredis and commander inside; shared code and the lazily loaded tracing in chunks
// beside them): loading ~150 modules made every run of the command cost ~0.38 s, of which
// ~0.3 s was module loading; bundled it is ~0.2 s. The unbundled files stay for the
// `./dashboard` export, which shares the application's own library and client.
const bundled = await build({
  metafile: true,
  entryPoints: ['src/main.ts', 'src/demoWorker.ts'],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ioredis and commander are CommonJS: their require() of Node's modules needs a real require.
  banner: {
    js: "import { createRequire as __pulseRequire } from 'node:module'; const require = __pulseRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});
execFileSync(process.execPath, ['src/dashboard/ui/build.mjs'], { stdio: 'inherit' });

// What the package runs: the bundle's files and the modules the `./dashboard` export imports. tsc's
// other modules (the commands, the demo: inside the bundle) stay in dist for the repository's
// scripts (trace-svg.mjs reads demoTraceView.js) and out of the tarball: a dist/.npmignore lists
// them (npm honours one below the package root beside "files"). 89 kB of them shipped, one
// importing devDependencies.
const runs = new Set(Object.keys(bundled.metafile.outputs).map((p) => relative('dist', p)));
const imports = /(?:\bfrom\s*|\bimport\s*\(\s*)'(\.\.?\/[^']+)'/g;
for (const queue = ['dashboard/index.js']; queue.length > 0; ) {
  const file = queue.pop();
  if (runs.has(file)) continue;
  runs.add(file);
  for (const m of readFileSync(join('dist', file), 'utf8').matchAll(imports)) queue.push(normalize(join(dirname(file), m[1])));
}
const unused = readdirSync('dist', { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.js') && !f.startsWith('dashboard-ui/') && !runs.has(f));
writeFileSync('dist/.npmignore', `${unused.map((f) => `/${f}`).join('\n')}\n`);
