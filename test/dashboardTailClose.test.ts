/**
 * The dashboard's close() ends every live stream, also a tail whose reader was still
 * being created (Redis slow) when close() came: that tail registered itself after close()
 * and streamed for ever (server.close() never returned, the process never exited).
 * The dashboard takes ioredis clients only.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { RedisServer } from './support/redisServer.js';
import { spawnChild } from './support/spawnChild.js';

describe('dashboard close() with a tail still opening', () => {
  it('the tail ends (503), server.close() resolves, the reader is closed and the process exits', async (ctx: TestContext) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const child = spawnChild('dashboardCloseChild.mjs', [server.url]);
    ctx.onTestFinished(() => void child.proc.kill('SIGKILL'));
    await child.waitLine('READY', 15_000);
    server.pause();
    child.proc.stdin?.write('go\n');
    await child.waitLine('REQUESTED', 5000);
    // close() was called; Redis answers again: the tail's reader is created now.
    server.resume();
    await child.waitLine('CLOSED', 10_000);
    const code = await child.exited(8000);
    expect(child.out()).toContain('TAIL 503');
    expect(child.out()).not.toContain('LEFT');
    expect(code).toBe(0);
  });
});
