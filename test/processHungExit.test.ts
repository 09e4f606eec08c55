/**
 * A service whose handler never returns shuts down (abort, `sink.close()`,
 * client quit): the process exits on its own, as it does when no handler
 * hangs. The in-progress keep-alive timer kept it alive for ever (a review of
 * head-of-line blocking, both clients, process() and processBatch()).
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { spawnChild } from './support/spawnChild.js';

const CASES = CLIENT_KINDS.flatMap((kind) =>
  (['process', 'batch'] as const).flatMap((mode) => (['hang', 'return'] as const).map((hang) => ({ kind, mode, hang }))),
);

describe.concurrent('a handler that never returns does not keep the process alive after close() and quit', () => {
  it.for(CASES)('$kind, $mode, handler: $hang', async ({ kind, mode, hang }, ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const name = uniqueName('hungexit');
    await new Stream(name, c.redis).add('e', 'x');
    const child = spawnChild('hungHandlerChild.mjs', [server.url, kind, name, mode, hang]);
    ctx.onTestFinished(() => void child.proc.kill('SIGKILL'));
    await child.waitLine('CLOSED', 15_000);
    expect(await child.exited(6000)).toBe(0);
    expect(child.out()).not.toContain('LEFT');
  });
});
