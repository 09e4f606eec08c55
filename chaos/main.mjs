// `npm run chaos [-- options]`: the full chaos run (chaos/full.chaos.ts); with
// `--short` the short run (chaos/short.chaos.ts, what CI runs after `npm
// test`); with `--soak [--minutes N] [--rate R]` the mixed-fault soak
// (chaos/soak.chaos.ts). vitest does not take options of its own making, so
// this passes them as environment variables; anything else goes to vitest.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const env = { ...process.env };
const rest = [];
let soak = false;
let short = false;
let minutes = 15;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--soak') soak = true;
  else if (a === '--short') short = true;
  else if (a === '--minutes') minutes = Number(args[++i]);
  else if (a.startsWith('--minutes=')) minutes = Number(a.slice(10));
  else if (a === '--rate') env.CHAOS_SOAK_RATE = String(Number(args[++i]));
  else if (a.startsWith('--rate=')) env.CHAOS_SOAK_RATE = String(Number(a.slice(7)));
  else rest.push(a);
}
if (soak && !(minutes > 0)) {
  console.error('--minutes takes a positive number');
  process.exit(2);
}
if (soak) env.CHAOS_SOAK_MINUTES = String(minutes);
const file = soak ? 'chaos/soak.chaos.ts' : short ? 'chaos/short.chaos.ts' : 'chaos/full.chaos.ts';
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
const child = spawn(process.execPath, [vitest, 'run', '--config', 'chaos/vitest.config.ts', file, ...rest], {
  cwd: root,
  env,
  stdio: 'inherit',
});
// Ctrl-C reaches the child through the terminal; only report its outcome here.
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
