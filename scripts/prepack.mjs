// `prepack` of each package: the registry page shows the package's README and
// the tarball needs the LICENSE. One source for both, at the repository root;
// links to files that stay in the repository (CHAOS.md, docs/...) become
// absolute, so they work from the registry page. Run from the package directory.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
const blob = `${repo}/blob/main/`;
// Images from their raw URL: a blob URL answers with GitHub's HTML page of the file, which the
// registry page cannot show as an image.
const raw = `${repo}/raw/main/`;
copyFileSync('../../LICENSE', 'LICENSE');
const readme = process.argv[2] ?? '../../README.md';
const text = readFileSync(readme, 'utf8').replace(
  /(!?)(\[[^\]]*\])\((?!https?:|#|mailto:)([^)\s]+)\)/g,
  (_, bang, label, target) => `${bang}${label}(${bang ? raw : blob}${target.replace(/^\.\//, '')})`,
);
writeFileSync('README.md', text);
