/**
 * The CLI run under `/usr/bin/time`: its exit code, output and peak resident
 * set size, for the tests that bound what a command holds in memory.
 */
import { spawn } from 'node:child_process';
import { MAIN } from './cli.js';

export interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the process, in MB. */
  rssMb: number;
}

/** Runs the CLI under /usr/bin/time: its exit code, output and peak RSS. */
export function measured(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS=%M', process.execPath, MAIN, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const m = /MAXRSS=(\d+)/.exec(stderr);
      resolve({ code, stdout, stderr: stderr.replace(/MAXRSS=\d+\n?/, ''), rssMb: m ? Number(m[1]) / 1024 : Number.NaN });
    });
  });
}
