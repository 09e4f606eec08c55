/**
 * A reader start at a Date in the middle of a long stream (250k entries,
 * 150k after the start): the count of the entries ahead stops at
 * MAX_START_PAGES (100k entries), which is not a deletion: counting again
 * (START_COUNT_TRIES, meant for deletions during the count) would copy the
 * same 100 pages through Lua twice more for a base still left unknown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
let c: TestClient;
beforeAll(async () => {
  srv = await RedisServer.start();
  c = await connect('ioredis', srv.url);
});
afterAll(async () => {
  await c?.close();
  await srv?.stop();
});

async function scriptCalls(): Promise<number> {
  const info = String(await c.cmd('INFO', 'commandstats'));
  let n = 0;
  for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) n += Number(m[2]);
  return n;
}

describe('reader start inside a long stream', () => {
  it('startAt a Date with 150k entries after it: the entries are counted once at most', async () => {
    const name = uniqueName('lstart');
    const s = new Stream(name, c.redis);
    const total = 250_000;
    const base = Date.now() - 10 * 60_000;
    // entries with IDs base+i, payload 200 bytes
    await c.cmd(
      'EVAL',
      `local p = string.rep('x', 200)
       for i = 1, tonumber(ARGV[2]) do redis.call('XADD', KEYS[1], (tonumber(ARGV[1]) + i) .. '-0', 'n', 'e', 'p', p) end
       return 1`,
      1,
      s.key,
      base,
      total,
    );
    const before = await scriptCalls();
    const reader = await s.newReader({ startAt: new Date(base + 100_000) });
    const calls = (await scriptCalls()) - before;
    await reader.close();
    await s.destroy();
    // One start script plus at most ~101 pages: counting the same pages three times is waste. The
    // work is measured in script calls, not in milliseconds (a loaded host once took 1.4 s for it).
    expect(calls).toBeLessThanOrEqual(110);
  }, 60_000);
});
