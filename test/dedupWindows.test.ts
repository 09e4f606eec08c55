/**
 * Checks that adds with different dedup windows on one stream never cut each
 * other's records short. Before the fix, an add with a dedupId expired both
 * dedup hashes by ITS OWN window (`PEXPIRE ... ARGV[5]`, dedupLua.ts
 * DEDUP_EXPIRY) and rotated them by its own window (DEDUP_LOOKUP), whatever
 * window the records already there were written with: one CLI `add
 * --dedup-id` (2 minutes) on an application stream with `dedupWindowMs: 10
 * * 60_000` (README's own example) cut every record of the application to 2
 * minutes, and the application's retry inside its window was added a second
 * time (review L). The hashes now keep the largest window written with and
 * never expire sooner (`GT`); the CLI takes `--dedup-window-ms`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { dedupKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { buildCli, cli } from './support/cli.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

beforeAll(buildCli, 120_000);

describe('the CLI add --dedup-id on an application stream with a longer dedup window', () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  it("keeps the application's records for the application's window (10 min), not the CLI's 2 min", async () => {
    const app = new Stream(uniqueName('dedupWinCli'), c.redis, { dedupWindowMs: 10 * 60_000 });
    try {
      await app.add('order.created', 'o-1', { dedupId: 'order-1' });
      const { current } = dedupKeys(app.name);
      expect(Number(await c.cmd('PTTL', current))).toBeGreaterThan(9 * 60_000);
      const r = await cli(['add', app.name, 'manual', 'fix', '--dedup-id', 'op-1']);
      expect(r.code, r.stderr).toBe(0);
      // order-1's window has about 10 minutes left: its record must live that long.
      expect(Number(await c.cmd('PTTL', current))).toBeGreaterThan(9 * 60_000);
    } finally {
      await app.destroy();
      await c.cmd('DEL', `${app.key}:lifecycle`);
    }
  }, 30_000);

  it('--dedup-window-ms sets the window of the add', async () => {
    const s = new Stream(uniqueName('dedupWinCliMs'), c.redis);
    try {
      const r = await cli(['add', s.name, 'manual', 'fix', '--dedup-id', 'op-1', '--dedup-window-ms', '600000']);
      expect(r.code, r.stderr).toBe(0);
      expect(Number(await c.cmd('PTTL', dedupKeys(s.name).current))).toBeGreaterThan(9 * 60_000);
      const bad = await cli(['add', s.name, 'manual', 'fix', '--dedup-id', 'op-1', '--dedup-window-ms', '0']);
      expect(bad.code).toBe(2);
    } finally {
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  }, 30_000);
});

// Both clients at once (streams of their own on the shared server): the tests mostly wait for windows to pass.
describe.concurrent.each(CLIENT_KINDS)('an add with a shorter window keeps the records of a longer one (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it("a retry inside the application's window still dedups after another instance's add with a shorter window", async () => {
    const name = uniqueName('dedupWin');
    const app = new Stream(name, c.redis, { dedupWindowMs: 10 * 60_000 });
    // Scaled-down stand-in for the CLI (fixed 2-minute window): same stream, a 1 s window.
    const operator = new Stream(name, c.redis, { dedupWindowMs: 1000 });
    try {
      const first = await app.add('order.created', 'o-1', { dedupId: 'order-1' });
      const opFirst = await operator.add('manual', 'fix', { dedupId: 'op-1' });
      // Its expiry set before the reply: 1 s from here it is over.
      const opAt = Date.now();
      // Wait until the other instance's window is over (before the fix its expiry took the
      // application's records with it: the hash gone; now the hash stays, and it is the second
      // that tells, not the 5 s this waited for a key that no longer expires).
      const { current } = dedupKeys(name);
      await waitFor(async () => Number(await c.cmd('EXISTS', current)) === 0 || Date.now() - opAt >= 1100, {
        timeout: 5000,
        what: 'the 1 s window to pass',
      });
      // Two more adds of the other instance, over a second apart: each would rotate the hashes by
      // its own 1 s window, the second dropping the previous hash and the application's record in it.
      await operator.add('manual', 'fix', { dedupId: 'op-2' });
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await operator.add('manual', 'fix', { dedupId: 'op-3' });
      // The application's retry, seconds after its add, well inside its 10-minute window.
      const retry = await app.add('order.created', 'o-1', { dedupId: 'order-1' });
      expect({ retry, len: Number(await c.cmd('XLEN', app.key)) }).toEqual({ retry: first, len: 4 });
      // The shorter window's own records live the stream's larger window (README "Idempotent publish").
      expect(await operator.add('manual', 'fix', { dedupId: 'op-1' })).toBe(opFirst);
    } finally {
      await app.destroy();
      await c.cmd('DEL', `${app.key}:lifecycle`);
    }
  }, 30_000);

  it('the hashes keep the larger window across a rotation an add with a shorter window makes', async () => {
    const name = uniqueName('dedupWinRotate');
    const app = new Stream(name, c.redis, { dedupWindowMs: 2000 });
    const operator = new Stream(name, c.redis, { dedupWindowMs: 300 });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      await app.add('e', 'start', { dedupId: 'a-0' });
      await sleep(1700);
      // Recorded late in the current hash's window: it must live until about 3.7 s.
      const late = await app.add('e', 'late', { dedupId: 'a-1' });
      await sleep(500);
      // The current hash is a (2 s) window old: this add rotates it to the previous one.
      await operator.add('manual', 'fix', { dedupId: 'op-1' });
      await sleep(400);
      // Rotating again by its own 300 ms would drop the previous hash, a-1 with it.
      await operator.add('manual', 'fix', { dedupId: 'op-2' });
      expect(await app.add('e', 'late', { dedupId: 'a-1' })).toBe(late);
    } finally {
      await app.destroy();
      await c.cmd('DEL', `${app.key}:lifecycle`);
    }
  }, 30_000);
});
