/**
 * Once a child process is reported exited, all it printed is there. The
 * test harness (spawnChild) took the child's 'exit' event for that, which
 * Node may emit before the last of its output is read: processHungExit
 * failed in CI with "no CLOSED line" and an empty output from a child that
 * printed CLOSED and exited 0.
 */
import { describe, expect, it } from 'vitest';
import { spawnChild } from './support/spawnChild.js';

describe('a child that prints and exits at once', () => {
  it('once it exited, all its output is there: in each of 24 at once', async () => {
    const children = Array.from({ length: 24 }, () => spawnChild('printThenExit.mjs', ['2000000']));
    // Each output looked at the moment its child is reported exited, not once all are.
    const ends = children.map((c) => c.exited(15_000).then((code) => ({ code, complete: c.out().endsWith('\nLAST\n') })));
    expect(await Promise.all(ends)).toEqual(children.map(() => ({ code: 0, complete: true })));
  });
});
