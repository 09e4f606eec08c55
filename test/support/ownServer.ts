import { afterAll, beforeAll, type TestContext } from 'vitest';
import { type ClientKind, connect, type TestClient } from './clients.js';
import { RedisServer } from './redisServer.js';

/**
 * A redis-server of the calling describe block's own, with a client of
 * `kind` on it: started before its tests, stopped after them. For tests that
 * look at the whole server (`CLIENT LIST`, `readBlocked`) and must see their
 * own connections only.
 */
export function ownServer(kind: ClientKind): { readonly c: TestClient; readonly server: RedisServer } {
  let server: RedisServer | undefined;
  let client: TestClient | undefined;
  beforeAll(async () => {
    server = await RedisServer.start();
    client = await connect(kind, server.url);
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });
  return {
    get c(): TestClient {
      if (!client) throw new Error('ownServer: used before its beforeAll ran');
      return client;
    },
    get server(): RedisServer {
      if (!server) throw new Error('ownServer: used before its beforeAll ran');
      return server;
    },
  };
}

/**
 * A redis-server of the calling test's own, with a client of `kind` on it;
 * `defer(f)` runs `f` when the test ends, before the client closes and the
 * server stops (last deferred, first run).
 */
export async function serverForTest(
  ctx: TestContext,
  kind: ClientKind,
): Promise<{ c: TestClient; server: RedisServer; defer: (f: () => Promise<unknown>) => void }> {
  const server = await RedisServer.start();
  const release: Array<() => Promise<unknown>> = [() => server.stop()];
  ctx.onTestFinished(async () => {
    for (const f of release.reverse()) await f().catch(() => {});
  });
  const c = await connect(kind, server.url);
  release.push(() => c.close());
  return { c, server, defer: (f) => void release.push(f) };
}
