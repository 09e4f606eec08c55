/**
 * close() of a reader or sink while one of its own connections reconnects (Redis up, the
 * user's client untouched): the library's connections are gone and the process exits.
 * node-redis' destroy() does not stop a reconnect whose socket is being made: it completed
 * after close() and the connection stayed open for ever (one per such close). The child
 * closes on its connection's drop (node-redis reports it), so close() lands in that window
 * every time. Nor does anything of the library keep the process alive after close(): ioredis'
 * connections closed mid-reconnect did for 2 s (their disconnectTimeout).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS } from './support/clients.js';
import { RedisServer, rawCommand } from './support/redisServer.js';
import { spawnChild } from './support/spawnChild.js';

async function pulseClients(port: number): Promise<{ id: string; name: string }[]> {
  const list = await rawCommand(port, 'CLIENT LIST', 2000, true);
  return list
    .split('\n')
    .map((l) => ({ id: /^id=(\d+)/.exec(l)?.[1] ?? '', name: / name=(\S*)/.exec(l)?.[1] ?? '' }))
    .filter((c) => c.id !== '' && c.name.startsWith('pulse:'));
}

describe.concurrent.each(CLIENT_KINDS)('close() while the library reconnects (%s)', (kind) => {
  for (const what of ['sink', 'reader'] as const) {
    it(`${what}: closed as its connections reconnect: none left on the server, the process exits`, async (ctx: TestContext) => {
      const server = await RedisServer.start();
      ctx.onTestFinished(() => server.stop());
      const child = spawnChild('closeOnDropChild.mjs', [server.url, kind, what]);
      ctx.onTestFinished(() => void child.proc.kill('SIGKILL'));
      await child.waitLine('READY', 15_000);
      for (const c of await pulseClients(server.port)) await server.killClients(`ID ${c.id}`);
      child.proc.stdin?.write('close\n');
      await child.waitLine('CLOSED', 10_000);
      const code = await child.exited(6000);
      expect(child.out()).not.toContain('LEFT');
      expect(code).toBe(0);
      // Nothing of the library holds the process: ioredis' connections closed mid-reconnect kept
      // it 2 s (their disconnectTimeout timer, never shorter; now 100 ms).
      const livedOn = Number(/EXITING (\d+)/.exec(child.out())?.[1] ?? Number.NaN);
      expect(livedOn, child.out()).toBeLessThan(1500);
      expect(await pulseClients(server.port)).toEqual([]);
    });
  }
});
