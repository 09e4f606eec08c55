/**
 * A stream name the library refuses is bad usage, exit code 2, in every command
 * (README). An outside trial found add, tail, dead replay and demo did so while
 * stream, sinks, pending and destroy said "no stream" (exit 1) and dead list
 * said "no dead letters" (exit 0). A key written outside the library under such
 * a name is still inspected.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './support/cli.js';
import { connect, uniqueName } from './support/clients.js';

describe.concurrent('CLI commands given a stream name the library refuses', () => {
  it.each([
    [['stream', 'a b']],
    [['sinks', 'a b']],
    [['pending', 'a b', 'billing']],
    [['destroy', 'a b', '--yes']],
    [['dead', 'a b']],
    [['dead', 'a b', '--json']],
  ])('%j exits 2 with the library reason', async (args) => {
    const r = await cli(args);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toMatch(/stream name "a b" must not contain space/);
  });

  it('still inspects a key written outside the library under such a name', async () => {
    const c = await connect('ioredis');
    const name = `${uniqueName('bad')} with spaces`;
    try {
      await c.cmd('XADD', `pulse:stream:${name}`, '*', 'n', 'e', 'p', 'x');
      const r = await cli(['stream', name, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ length: 1 });
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
      await c.close();
    }
  });
});

describe.concurrent('CLI options that contradict or miss each other are bad usage (exit 2)', () => {
  it.each([
    // Silently ignored before: the add went without dedup.
    [['add', 'usage-x', 'e', 'p', '--dedup-window-ms', '1000']],
    // --after won silently.
    [['tail', 'usage-x', '--from', 'oldest', '--after', '1-0', '--count', '1']],
    // Exit 1 before: a refusal for want of a confirmation is about how it was called.
    [['destroy', 'usage-x']],
  ])('%j', async (args) => {
    const r = await cli(args);
    expect([r.code, r.stdout], r.stderr).toEqual([2, '']);
  });
});
