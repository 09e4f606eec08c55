/**
 * The tests' private redis-server (test/support/redisServer.ts) is the process it started, not
 * whatever answers on its port. A clean-clone CI run failed readerChurn with "CLUSTERDOWN Hash slot
 * not served" from its private, non-cluster server: two free-port picks met, the second server
 * failed to bind, and its start took the other test's cluster node answering PING for its own.
 *
 * Failed before the fix: the start on a taken port resolved (to a server talking to the other one).
 */
import { describe, expect, it } from 'vitest';
import { RedisServer, rawCommand } from './support/redisServer.js';

describe('RedisServer.start', () => {
  it('refuses a port another redis-server answers on', async (ctx) => {
    const other = await RedisServer.start();
    ctx.onTestFinished(() => other.stop());
    await expect(RedisServer.start({ port: other.port })).rejects.toThrow(/another redis-server|exited at start/);
    // Ours failed to bind (said either way, whichever is seen first); the other server is untouched.
    expect(await rawCommand(other.port, 'PING')).toBe('+PONG');
  });
});
