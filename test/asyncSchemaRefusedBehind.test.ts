/**
 * An add whose asynchronous schema refuses the value while an earlier add's
 * schema is still validating: the add rejects with InvalidArgumentError, and
 * nothing else escapes. Before, the refusal of the later add's schema was a
 * promise nothing handled until the earlier one answered (the later add waits
 * for it to keep adds in order): an unhandled rejection, which ends a Node
 * process by default, though the caller handled the add's own promise
 * (outside review of the add path; both clients failed).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';

// Not concurrent: the listener sees every unhandled rejection of the worker.
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => void process.off('unhandledRejection', onUnhandled));

/** Node reports an unhandled rejection after the microtasks of the turn that left it: a few turns. */
async function turns(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

/** A Standard Schema that answers after `ms`, accepting or refusing every value. */
function slowSchema(ms: number, accept: boolean) {
  return {
    '~standard': {
      version: 1 as const,
      vendor: 'test',
      validate: (value: unknown) =>
        new Promise((resolve) => setTimeout(() => resolve(accept ? { value } : { issues: [{ message: 'refused' }] }), ms)),
    },
  };
}

describe.each(CLIENT_KINDS)('an async schema refusing behind a slower one (%s)', (kind) => {
  it('the later add rejects with InvalidArgumentError, the earlier is stored, no rejection escapes', async ({
    onTestFinished,
  }) => {
    const c = await connect(kind);
    onTestFinished(() => c.close());
    const s = new Stream<Record<string, unknown>>(uniqueName('asyncRefusedBehind'), c.redis, {
      maxLen: 0,
      schemas: { slow: slowSchema(200, true), fast: slowSchema(10, false) } as never,
    });
    onTestFinished(() => s.destroy());
    const first = s.add('slow', { a: 1 });
    // Handled at once: only the library's own promises can be left unhandled.
    const second = s.add('fast', { b: 1 }).catch((e: unknown) => e);
    expect(typeof (await first)).toBe('string');
    const err = await second;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/refused/);
    expect(Number(await c.cmd('XLEN', s.key))).toBe(1);
    await turns();
    expect(unhandled.map(String)).toEqual([]);
  });
});
