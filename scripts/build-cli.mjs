// Builds the CLI package: its code and the dashboard's declarations at once
// (both read the library's built types, so the library is built first), then
// the dashboard's front end. The front end's type check is `npm run typecheck`'s.
// Run from packages/pulse-streaming-cli (its `npm run build`).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tscAll } from './tsc-parallel.mjs';

rmSync('dist', { recursive: true, force: true });
await tscAll(['tsconfig.json', 'tsconfig.dashboard.json']);
execFileSync(process.execPath, ['src/dashboard/ui/build.mjs'], { stdio: 'inherit' });
