// Builds the library package twice from one source: ESM (dist/esm) for `import`,
// CommonJS (dist/cjs) for `require` on every Node 20 release without require(esm)
// warnings. Run from packages/pulse-streaming (its `npm run build`).
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync('dist', { recursive: true, force: true });
for (const config of ['tsconfig.esm.json', 'tsconfig.cjs.json'])
  execFileSync(process.execPath, [tsc, '-p', config], { stdio: 'inherit' });
// The package is "type": "module": mark the CommonJS half as such.
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
