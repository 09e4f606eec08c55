/**
 * An application's cache traffic on a Redis at its memory limit, for the
 * tests of what a `volatile-*` maxmemory policy evicts: cache keys with a
 * one-hour time to live, `maxmemory` set to the memory in use, then a cache
 * write every 50 ms until the test ends (each evicts the volatile keys
 * nearest their expiry under `volatile-ttl`).
 */
import type { TestContext } from 'vitest';
import type { TestClient } from './clients.js';

/** Fills the cache now; the returned function puts memory at its limit and starts the writes. */
export async function cacheTraffic(ctx: TestContext, app: TestClient): Promise<() => Promise<void>> {
  const big = 'c'.repeat(20_000);
  for (let i = 0; i < 20; i++) await app.cmd('SET', `cache:${i}`, big, 'EX', 3600);
  return async () => {
    const used = Number(/used_memory:(\d+)/.exec(String(await app.cmd('INFO', 'memory')))?.[1]);
    await app.cmd('CONFIG', 'SET', 'maxmemory', String(used));
    let stop = false;
    let n = 100;
    const loop = (async () => {
      while (!stop) {
        await app.cmd('SET', `cache:${n++}`, big, 'EX', 3600).catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    ctx.onTestFinished(async () => {
      stop = true;
      await loop;
    });
  };
}

/** Keys Redis evicted so far (`INFO stats`). */
export async function evictedKeys(c: TestClient): Promise<number> {
  return Number(/evicted_keys:(\d+)/.exec(String(await c.cmd('INFO', 'stats')))?.[1]);
}
