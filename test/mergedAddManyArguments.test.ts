/**
 * Outside review AM (defect 3; line numbers as of commit 3327f93): adds within every documented limit (README "Headers": at
 * most 256 headers per event, names of 1 to 64 characters) fail when 256 of
 * them are issued in one tick with ioredis. The batcher merges them into one
 * script call (256 events, under 256 KiB: short header names and values weigh
 * little), whose layout 4 (header names differ from event to event) has
 * 5 + 2 x 256 arguments per event: about 132,000 arguments, which
 * ioredisDriver.ts `ioCall` spreads into `client.callBuffer(cmd, ...rest)`.
 * V8 throws "Maximum call stack size exceeded" past about 120,000 spread
 * arguments; the batcher turns the throw into the adds' rejection, and
 * `addError` calls it "outcome unknown, no answer from Redis (the event may or
 * may not be stored)" for commands that were never sent. node-redis takes the
 * arguments as an array: its adds pass (checked, not kept here).
 * Failed before the fix: 3 of 3 runs (ioredis).
 * Fixed: the ioredis driver passes a command's arguments as one array (ioredis flattens it), never spread into the call.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, sharedUrl, uniqueName } from './support/clients.js';

/** 256 distinct valid header names of one or two characters. */
const NAMES: string[] = (() => {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const out: string[] = [];
  for (const a of chars) out.push(a);
  for (const a of chars) for (const b of chars) if (out.length < 256) out.push(a + b);
  return out;
})();

describe.each(['ioredis'] as const)('256 adds of 256 headers in one tick (%s)', (kind) => {
  it('are all stored, each with its headers', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const admin = new Redis(sharedUrl());
    ctx.onTestFinished(() => admin.disconnect());
    const s = new Stream(uniqueName('hdrs'), c.redis, { maxLen: 0 });
    ctx.onTestFinished(async () => void (await admin.del(s.key)));
    const N = 256;
    const outcomes = await Promise.allSettled(
      Array.from({ length: N }, (_, i) => {
        // Names in another order for each event: no shared columns (layout 4).
        const headers: Record<string, string> = {};
        for (let j = 0; j < NAMES.length; j++) headers[NAMES[(j + i) % NAMES.length] as string] = '';
        return s.add('e', '', { headers });
      }),
    );
    const failed = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason));
    expect(failed.slice(0, 1)).toEqual([]);
    expect(await admin.xlen(s.key)).toBe(N);
  }, 30_000);
});
