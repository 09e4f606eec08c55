/**
 * Outside review P: each node-redis driver adds a 'reconnecting' listener to
 * the user's client (UnwrittenTimeout, 58b1bea), never removed. Drivers are
 * cached per client object, and each proxy (withCommandOptions,
 * withTypeMapping: new objects over one client) gets its own: an app that
 * makes a Stream over a proxy per request (or per stream name) adds a
 * listener to its client each time, keeping each proxy and its state alive
 * for good; past 10, Node warns of a memory leak. Before: none.
 */
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName } from './support/clients.js';

describe('node-redis: listeners on the user client', () => {
  it("Streams over proxies of one client do not pile up 'reconnecting' listeners on it", async () => {
    const client = createClient({ url: sharedUrl() });
    client.on('error', () => {});
    await client.connect();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const before = client.listenerCount('reconnecting');
      for (let i = 0; i < 20; i++) {
        const s = new Stream(uniqueName('revPlst'), client.withCommandOptions({ timeout: 1000 }));
        await s.add('e', 'x');
        await s.destroy();
      }
      await new Promise((r) => setImmediate(r));
      // Before the fix: 20 more listeners (one per proxy) and a MaxListenersExceededWarning.
      expect(client.listenerCount('reconnecting') - before).toBeLessThanOrEqual(1);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      client.destroy();
    }
  });
});
