/**
 * Outside review AF (defect 3; line numbers as of commit b664c82). `demo --stream <name>`
 * deleted dead letters it did not make: commands/demo.ts ~38-40 refused the name only when
 * `pulse:stream:<name>` existed, while demo.ts #cleanup (~333) DELs `pulse:stream:<name>:dead`
 * and ~272 counted the letters already there as the demo's own. Expected: the demo refuses the
 * name (exit 2, as when the stream exists) when `<name>:dead` exists, and leaves it as it was.
 *
 * The reviewer's explanation: `demo --stream <name>` deletes dead letters it did not make.
 *
 * `demo --stream` refuses a stream that exists ("the demo needs a new stream
 * name", commands/demo.ts), so that it never writes into, nor destroys, an
 * operator's data. But it checks only `pulse:stream:<name>`; at the end
 * (demo.ts #cleanup) it also runs `DEL pulse:stream:<name>:dead`. A stream
 * that was destroyed keeps its dead letters (README: `destroy` deletes "a
 * stream and the library's keys for it" and the CLI says "its dead-letter
 * stream <name>:dead, if any, is kept"), so `<name>` is free while
 * `<name>:dead` holds an operator's dead letters: the demo deletes them
 * without a word, and its summary counts them as its own ("deadLetters": 1).
 *
 * Expected: the demo refuses the name (as it does when the stream exists), or
 * leaves `<name>:dead` as it found it. Observed: the letter is gone.
 *
 * Failed before the fix: 2 of 2 here (the reviewer's case: the letter was gone; the second
 * case: an existing stream was refused with exit 1, not the 2 of a refused name).
 * Fixed: commands/demo.ts refuses a --stream name whose stream or dead-letter stream exists, both with exit 2.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

describe('demo --stream and an existing dead-letter stream', { timeout: 120_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  it('never deletes the dead letters of a destroyed stream whose name it is given', async ({ expect }) => {
    const name = uniqueName('revaf-demo');
    const key = `pulse:stream:${name}`;
    // A stream with a dead letter, then destroyed through the CLI: its dead letters stay, as documented.
    await c.cmd('XADD', key, '*', 'n', 'created', 'p', '{}');
    const letter = String(
      await c.cmd(
        'XADD',
        `${key}:dead`,
        '*',
        'n',
        'created',
        'p',
        '{"order":42}',
        'source_stream',
        name,
        'source_sink',
        'billing',
        'source_id',
        '1-1',
        'deliveries',
        '5',
        'reason',
        'max deliveries reached',
      ),
    );
    try {
      const destroyed = await cli(['destroy', name, '--yes']);
      expect(destroyed.code, destroyed.stderr).toBe(0);
      expect(Number(await c.cmd('XLEN', `${key}:dead`))).toBe(1);

      const demo = await cli(['demo', '--stream', name, '--duration', '1', '--rate', '20', '--json'], { timeoutMs: 90_000 });
      // Refused (like an existing stream), or run: either way the operator's dead letter must still be there.
      const left = (await c.cmd('XRANGE', `${key}:dead`, letter, letter)) as unknown[];
      expect(
        left.length === 1,
        `demo exit ${demo.code}, ${demo.stdout.match(/"deadLetters": \d+/)?.[0]}: the letter is gone`,
      ).toBe(true);
      // Refused, as a stream that exists is, naming the dead-letter stream.
      expect(demo.code, demo.stderr).toBe(2);
      expect(demo.stderr).toContain(`${name}:dead`);
    } finally {
      await c.cmd('DEL', key, `${key}:dead`);
    }
  });

  it('refuses a stream that exists with exit 2, and leaves it as it was', async ({ expect }) => {
    const name = uniqueName('revaf-demo');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'created', 'p', '{}');
    try {
      const demo = await cli(['demo', '--stream', name, '--duration', '1', '--rate', '20', '--json'], { timeoutMs: 90_000 });
      expect(demo.code, demo.stderr).toBe(2);
      expect(demo.stderr).toContain('already exists');
      expect(Number(await c.cmd('XLEN', key))).toBe(1);
    } finally {
      await c.cmd('DEL', key);
    }
  });
});
