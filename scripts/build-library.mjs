// Builds the library package twice from one source: ESM (dist/esm) for `import`,
// CommonJS (dist/cjs) for `require` on every Node 20 release without require(esm)
// warnings, both at once. Run from packages/pulse-streaming (its `npm run build`).
import { rmSync, writeFileSync } from 'node:fs';
import { tscAll } from './tsc-parallel.mjs';

rmSync('dist', { recursive: true, force: true });
await tscAll(['tsconfig.esm.json', 'tsconfig.cjs.json']);
// The package is "type": "module": mark the CommonJS half as such.
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
