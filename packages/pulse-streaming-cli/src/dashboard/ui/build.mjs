// Builds the dashboard's front end into the package's dist/dashboard-ui/:
// app.js and app.css bundled and minified by esbuild (Preact and uPlot
// inside: nothing is fetched at run time), index.html, and a gzipped copy of
// each, which the handler serves to browsers that accept gzip.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = new URL('./', import.meta.url);
const out = new URL('../../../dist/dashboard-ui/', import.meta.url);
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [new URL('main.tsx', here).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: new URL('app.js', out).pathname,
  legalComments: 'none',
  logLevel: 'warning',
});
writeFileSync(new URL('index.html', out), readFileSync(new URL('index.html', here)));

let total = 0;
for (const file of ['index.html', 'app.js', 'app.css']) {
  const gz = gzipSync(readFileSync(new URL(file, out)), { level: 9 });
  writeFileSync(new URL(`${file}.gz`, out), gz);
  total += gz.length;
}
if (process.env.PULSE_UI_SIZE) console.log(`dashboard front end: ${(total / 1024).toFixed(1)} KiB gzipped`);
