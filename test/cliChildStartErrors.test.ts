/**
 * When a process the CLI starts fails at start (its throwaway redis-server,
 * a demo consumer), the CLI says why, with the line of that process's
 * stderr that explains it. It read stderr up to the 'exit' event, which may
 * come before the last of it, and for a crashed Node process showed the
 * last line, which is Node's version (`Node.js v20...`), not the error.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { whyExited } from '../packages/pulse-streaming-cli/src/demoConsumers.js';
import { buildCli, cli } from './support/cli.js';

beforeAll(buildCli, 120_000);

const dir = mkdtempSync(join(tmpdir(), 'pulse-cli-start-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.concurrent('a process the CLI starts fails at start', () => {
  it('the throwaway redis-server: its error line is shown', async ({ expect }) => {
    // The real redis-server, given a setting it refuses: it prints why and exits 1.
    const real = execFileSync('sh', ['-c', 'command -v redis-server']).toString().trim();
    const bin = join(dir, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(join(bin, 'redis-server'), `#!/bin/sh\nexec '${real}' "$@" --maxmemory-policy no-such-policy\n`);
    chmodSync(join(bin, 'redis-server'), 0o755);
    const r = await cli(['streams'], { embedded: true, env: { PATH: `${bin}:${process.env.PATH}` } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('redis-server exited at start: argument(s) must be one of the following');
  });

  it('a demo consumer: its error line is shown, not Node’s version line', async ({ expect }) => {
    // Loaded into every Node process of the run; throws only in the demo's consumer processes.
    const boom = join(dir, 'boom.cjs');
    writeFileSync(boom, "if (process.env.PULSE_DEMO_LABEL) throw new Error('boom at start');\n");
    const r = await cli(['demo', '--duration', '2', '--rate', '50'], {
      embedded: true,
      env: { NODE_OPTIONS: `--require ${boom}` },
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/exited at start: Error: boom at start/);
    expect(r.stderr).not.toMatch(/exited at start: Node\.js/);
  });

  it('whyExited picks the error line of a Node crash report, else the last line', ({ expect }) => {
    const report = 'file:///w.js:3\n  throw e;\n  ^\n\nTypeError: bad thing\n    at f (file:///w.js:3:3)\n\nNode.js v20.20.0\n';
    expect(whyExited(report)).toBe('TypeError: bad thing');
    expect(whyExited('something went wrong\nfinal words\n')).toBe('final words');
    expect(whyExited('')).toBe('');
  });
});
