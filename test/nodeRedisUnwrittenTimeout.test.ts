/**
 * node-redis with a command timeout (`commandOptions.timeout`; node-redis 6
 * defaults it to 5 s): an add (and a destroy, on the same batcher) issued
 * just as Redis goes away settles, with ADD_NOT_SENT as the README promises
 * ("node-redis' command timeout while it is disconnected"). Outside review
 * M: the library drops the user's timeout for commands sent while the
 * client says `isReady` (nodeRedisDriver.ts `send`); node-redis writes on a
 * setImmediate, so when the socket closed first the command stayed in its
 * write queue with no timeout until Redis was back. The window is a race:
 * the test tries a few times and fails on the first call that hangs (it hit
 * the ready path on most runs).
 */
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('node-redis command timeout when Redis has just gone away', () => {
  it('an add and a destroy issued right after Redis died settle within the client timeout', async () => {
    const outcomes: string[] = [];
    for (let attempt = 0; attempt < 8; attempt++) {
      const srv = await RedisServer.start();
      const c = createClient({ url: srv.url, commandOptions: { timeout: 300 } });
      c.on('error', () => {});
      await c.connect();
      try {
        const s = new Stream(uniqueName('race'), c);
        await s.add('e', 'warm');
        await srv.kill();
        const readyWhenSent = c.isReady;
        const settled = (p: Promise<unknown>, what: string) =>
          within(p, 2000, what).then(
            () => 'done',
            (e: Error & { code?: string }) => (/did not settle/.test(e.message) ? 'hung' : (e.code ?? e.name)),
          );
        // In one tick, as an app would: both reach the client on the batcher's next tick.
        const [add, destroy] = await Promise.all([settled(s.add('e', 'x'), 'add'), settled(s.destroy(), 'destroy')]);
        outcomes.push(`${readyWhenSent ? 'ready' : 'not ready'}: add ${add}, destroy ${destroy}`);
        if (add === 'hung' || destroy === 'hung') break;
      } finally {
        c.destroy();
        await srv.stop();
      }
    }
    // Before the fix: e.g. ["not ready: add ADD_NOT_SENT, ...", "ready: add hung, destroy hung"].
    expect(outcomes.filter((o) => o.includes('hung'))).toEqual([]);
    // Redis is gone: never stored. Not sent, or (written before the client saw the drop) unknown.
    for (const o of outcomes) expect(o).toMatch(/add (ADD_NOT_SENT|ADD_OUTCOME_UNKNOWN),/);
  });

  // The commands a ready client gets share one AbortSignal (unwrittenTimeout.ts): more than 10
  // listeners on it at once must not make Node warn of an EventTarget leak.
  it('many commands in one tick on a ready client: stored, and no listener leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const c = createClient({ url: sharedUrl(), commandOptions: { timeout: 5000 } });
    c.on('error', () => {});
    await c.connect();
    try {
      // Adds to different streams in one tick go out as separate commands.
      const streams = Array.from({ length: 30 }, () => new Stream(uniqueName('many'), c));
      const ids = await Promise.all(streams.map((s) => s.add('e', 'x')));
      expect(ids.every((id) => typeof id === 'string')).toBe(true);
      for (const s of streams) await s.destroy();
      // Node emits its warnings on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      c.destroy();
    }
  });
});
