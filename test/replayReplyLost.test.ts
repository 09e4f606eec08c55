/**
 * A replay whose reply the connection lost: the move ran in Redis (the letter is back in its
 * stream, gone from the dead letters), but the client never heard it. Before, ioredis sent the
 * script again once reconnected (its default for the user's client): the second run found the
 * letter gone, and the replay resolved to none replayed (the CLI: "no dead letters to replay").
 * Moves on one node now go on a connection of the library's own, which sends nothing again: the
 * replay rejects, its outcome unknown, or says what it replayed; never "none" after a move.
 * (A review of dead letters; the ioredis case failed before.)
 */
import { type AddressInfo, createServer, connect as tcpConnect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { replayDead } from '../packages/pulse-streaming/src/internal/replayScripts.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** A TCP proxy to `port` that, once armed, drops both sockets at the first reply after a write holding `marker`. */
async function dropProxy(port: number, marker: string) {
  let armed = false;
  const server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    let dropNext = false;
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      if (armed && d.includes(marker)) [dropNext, armed] = [true, false];
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => (dropNext ? end() : client.write(d)));
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arm: () => {
      armed = true;
    },
    close: () => {
      server.close();
    },
  };
}

describe.concurrent.each(CLIENT_KINDS)('a replay whose reply was lost (%s)', (kind) => {
  it('rejects, or resolves to what it replayed: never to none after the move ran', async ({ onTestFinished }) => {
    const server = await RedisServer.start();
    onTestFinished(() => server.stop());
    const admin = await connect(kind, server.url);
    onTestFinished(() => admin.close());
    // Loaded: the first EVALSHA runs the move (a NOSCRIPT would be the reply dropped, nothing moved).
    await admin.cmd('SCRIPT', 'LOAD', replayDead.source);
    const proxy = await dropProxy(server.port, replayDead.sha);
    onTestFinished(() => proxy.close());
    const user = await connect(kind, proxy.url);
    onTestFinished(() => user.close().catch(() => {}));
    const name = uniqueName('replay-lost');
    const s = new Stream(name, user.redis);
    await admin.cmd('XADD', `pulse:stream:${name}:dead`, '*', 'n', 'ev', 'p', 'x', 'source_stream', name, 'source_sink', 'g');
    proxy.arm();
    const outcome = await replayDeadLetters(s).then(
      (ids) => ({ ids }),
      (err: Error) => ({ err: err.message }),
    );
    // The move ran: the letter is back in its stream.
    expect(Number(await admin.cmd('XLEN', `pulse:stream:${name}:dead`))).toBe(0);
    const added = ((await admin.cmd('XRANGE', `pulse:stream:${name}`, '-', '+')) as [unknown, unknown][]).map(([id]) =>
      String(id),
    );
    expect(added).toHaveLength(1);
    if ('ids' in outcome) expect(outcome.ids).toEqual(added);
  });
});
