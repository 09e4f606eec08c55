/**
 * Where the test suite's CPU goes, file by file: `PULSE_CPU_PROBE=<log file>
 * npm test` appends one line per test file with the CPU its worker spent on
 * it (own) and that of the processes it started and reaped (children: CLI
 * runs, tsc, consumer processes, private redis-servers), in seconds, its
 * wall time and when it started (epoch seconds: what ran beside what).
 * `npm test` is CPU-bound on two cores: the wall time follows the sum.
 * Servers shared by several files and vitest's own process are not in it.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';

/** utime, stime, cutime, cstime of this process, in clock ticks (fields 14-17 of /proc/self/stat). */
function ticks(): number[] {
  const fields = (readFileSync('/proc/self/stat', 'utf8').split(') ')[1] ?? '').split(' ');
  return fields.slice(11, 15).map(Number);
}

let start: number[] = [];
let startedAt = 0;

beforeAll(() => {
  start = ticks();
  startedAt = Date.now();
});

afterAll(() => {
  const [user = 0, sys = 0, childUser = 0, childSys = 0] = ticks().map((v, i) => (v - (start[i] ?? 0)) / 100);
  const file = (expect.getState().testPath ?? '?').split('/test/').pop();
  const line = `${file} own=${(user + sys).toFixed(1)} children=${(childUser + childSys).toFixed(1)} wall=${((Date.now() - startedAt) / 1000).toFixed(1)} start=${(startedAt / 1000).toFixed(1)}`;
  appendFileSync(process.env.PULSE_CPU_PROBE ?? '/dev/null', `${line}\n`);
});
