// Runs `tsc -p` for each config at once (the configs must not depend on each
// other's output): the builds of `npm test`'s pretest were five tsc runs one
// after another, about 13 s of a 3-minute budget on two cores.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** Resolves when every `tsc -p config` has passed; rejects with the configs that failed. */
export async function tscAll(configs, cwd = process.cwd()) {
  const codes = await Promise.all(
    configs.map(
      (config) =>
        new Promise((resolve) => {
          const child = spawn(process.execPath, [tsc, '-p', config], { cwd, stdio: 'inherit' });
          child.on('exit', (code) => resolve(code ?? 1));
          child.on('error', () => resolve(1));
        }),
    ),
  );
  const failed = configs.filter((_, i) => codes[i] !== 0);
  if (failed.length > 0) throw new Error(`tsc failed: ${failed.join(', ')}`);
}
