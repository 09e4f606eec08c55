/**
 * Audit: the connections the library opens (README "Delivery guarantees" last paragraph,
 * "How it works"): sinks and readers read on connections of their own, closed by close();
 * with ioredis adds travel on a connection of the library's own that closes when your client ends.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('audit: connections', () => {
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.port);
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });
  const names = async (): Promise<string[]> =>
    String(await admin.call('CLIENT', 'LIST'))
      .split('\n')
      .map((l) => / name=(\S*)/.exec(l)?.[1] ?? '')
      .filter((n) => n !== '');

  it.each(['quit', 'disconnect'] as const)(
    'ioredis: the publish connection closes when the user client ends (%s)',
    async (how) => {
      const c = await connect('ioredis', server.url);
      const s = new Stream(uniqueName('conn'), c.redis);
      await s.add('e', 'x');
      await waitFor(async () => (await names()).includes('pulse:publish'), { what: 'pulse:publish open' });
      if (how === 'quit') await (c.redis as Redis).quit();
      else (c.redis as Redis).disconnect();
      await waitFor(async () => !(await names()).includes('pulse:publish'), { what: 'pulse:publish closed' });
    },
  );

  it.each(CLIENT_KINDS)(
    '%s: sink.close() closes every connection the sink opened; the user client stays usable',
    async (kind) => {
      const c: TestClient = await connect(kind, server.url);
      try {
        const s = new Stream(uniqueName('conn'), c.redis);
        const sink = await s.newSink('closing', { blockMs: 100 });
        const sub = sink.subscribe();
        await s.add('e', 'x');
        const [ev] = await take(sub, 1);
        await ev?.ack();
        await waitFor(async () => (await names()).some((n) => n.startsWith('pulse:sink:closing:')), { what: 'sink connections' });
        await sink.close();
        await waitFor(async () => !(await names()).some((n) => n.startsWith('pulse:sink:closing:')), {
          what: 'sink connections closed',
        });
        expect(String(await c.cmd('PING'))).toBe('PONG');
        await s.destroy();
      } finally {
        await c.close();
      }
    },
  );
});
