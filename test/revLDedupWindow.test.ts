/**
 * revL: an add with a dedupId rewrites the expiry of the stream's dedup
 * hashes to ITS OWN window (`PEXPIRE ... ARGV[5]`, dedupLua.ts DEDUP_EXPIRY)
 * and rotates them by its own window (DEDUP_LOOKUP), whatever window the
 * records already there were written with. The CLI's new `add --dedup-id`
 * always uses the default 2-minute window (commands/add.ts: `new Stream(name,
 * client, { maxLen })`, no way to give another): one operator publish on an
 * application stream with `dedupWindowMs: 10 * 60_000` (README's own
 * example) cuts every record of the application to 2 minutes, and a retry of
 * the application's own add 2-10 minutes later, inside its window, is added
 * a second time. No fault of the application: a duplicate the README's
 * "Idempotent publish" promises away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { dedupKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { buildCli, cli } from './support/cli.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

beforeAll(buildCli, 120_000);

describe('revL: the CLI add --dedup-id on an application stream with a longer dedup window', () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  it("keeps the application's records for the application's window (10 min), not the CLI's 2 min", async () => {
    const app = new Stream(uniqueName('revLwin'), c.redis, { dedupWindowMs: 10 * 60_000 });
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
});

describe.each(CLIENT_KINDS)('revL: a shorter-window add expires the records of a longer window (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it("a retry inside the application's window still dedups after another instance's add with a shorter window", async () => {
    const name = uniqueName('revLwin2');
    const app = new Stream(name, c.redis, { dedupWindowMs: 10 * 60_000 });
    // Scaled-down stand-in for the CLI (fixed 2-minute window): same stream, a 1 s window.
    const operator = new Stream(name, c.redis, { dedupWindowMs: 1000 });
    try {
      const first = await app.add('order.created', 'o-1', { dedupId: 'order-1' });
      await operator.add('manual', 'fix', { dedupId: 'op-1' });
      // Wait until the other instance's window is over (its expiry took the application's records with it).
      const { current } = dedupKeys(name);
      await waitFor(async () => Number(await c.cmd('EXISTS', current)) === 0, {
        timeout: 5000,
        what: 'the 1 s window to pass',
      }).catch(() => undefined);
      // The application's retry, seconds after its add, well inside its 10-minute window.
      const retry = await app.add('order.created', 'o-1', { dedupId: 'order-1' });
      expect({ retry, len: Number(await c.cmd('XLEN', app.key)) }).toEqual({ retry: first, len: 2 });
    } finally {
      await app.destroy();
      await c.cmd('DEL', `${app.key}:lifecycle`);
    }
  }, 30_000);
});
