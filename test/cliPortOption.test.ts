/**
 * Outside review AF (item 1). `pulse-streaming ui --port 99999` exited 1 with
 * Node's RangeError (`options.port should be >= 0 and < 65536`): main.ts
 * parsed --port as any whole number >= 0, and the bad value surfaced only
 * when the server tried to listen. Expected: a
 * bad option value is bad usage, as for every other option, so exit 2 with a
 * clear message from commander's option parsing, before anything is started.
 *
 * Failed before the fix: 99999 and 65536 (exit 1, "error: options.port should
 * be >= 0 and < 65536. Received type number (99999)" from Node's listen); the
 * other four already exited 2 and fail only on the new wording.
 * Fixed: main.ts parses --port with portNumber, a whole number from 0 to
 * 65535, and throws commander's InvalidArgumentError otherwise.
 */
import { beforeAll, describe, it } from 'vitest';
import { buildCli, cli, lines, noStack } from './support/cli.js';

beforeAll(buildCli, 120_000);

describe('ui --port takes a port number', { timeout: 60_000 }, () => {
  it.for(['99999', '65536', '-1', '80.5', 'http', '1e3'])('refuses --port %s as bad usage (exit 2)', async (port, { expect }) => {
    const r = await cli(['ui', '--port', port], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringContaining('--port must be a port number from 0 to 65535')]);
    expect(r.stderr).not.toContain('RangeError');
    expect(noStack(r.stderr)).toBe(true);
    expect(r.stdout).toBe('');
  });
});
