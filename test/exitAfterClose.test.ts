/**
 * With ioredis, adds travel on a connection the library duplicates from the user's client
 * (`pulse:publish`). Once the user closed their client, that connection must end too, or
 * it keeps the process alive: also when the client was closed while it waited to
 * reconnect, for which ioredis emits no 'end' (node-redis adds use the user's client).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { RedisServer, rawCommand } from './support/redisServer.js';
import { type Child, spawnChild } from './support/spawnChild.js';

async function start(ctx: TestContext): Promise<{ server: RedisServer; child: Child }> {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const child = spawnChild('publishCloseChild.mjs', [server.url]);
  ctx.onTestFinished(() => void child.proc.kill('SIGKILL'));
  await child.waitLine('READY', 15_000);
  return { server, child };
}

async function closedAndExits(child: Child): Promise<void> {
  child.proc.stdin?.write('close\n');
  expect(await child.waitLine('CLOSED', 8000)).toBe('CLOSED reconnecting');
}

async function exitCode(child: Child): Promise<number | null | 'timeout'> {
  const code = await child.exited(6000);
  expect(child.out()).not.toContain('LEFT');
  return code;
}

describe.concurrent('ioredis: pulse:publish ends with a client closed while it waits to reconnect', () => {
  it('Redis down for good: the process exits', async (ctx) => {
    const { server, child } = await start(ctx);
    await server.kill();
    await closedAndExits(child);
    expect(await exitCode(child)).toBe(0);
  });

  it('Redis back after the close: the publish connection does not stay, the process exits', async (ctx) => {
    const { server, child } = await start(ctx);
    await server.kill();
    await closedAndExits(child);
    await server.restart();
    expect(await exitCode(child)).toBe(0);
  });

  it("only the user's connection dropped (pulse:publish still connected): the process exits", async (ctx) => {
    const { server, child } = await start(ctx);
    const list = await rawCommand(server.port, 'CLIENT LIST', 2000, true);
    const user = /^id=(\d+) .* name=user /m.exec(list)?.[1];
    expect(user).toBeDefined();
    await rawCommand(server.port, `CLIENT KILL ID ${user}`);
    await closedAndExits(child);
    expect(await exitCode(child)).toBe(0);
  });
});
