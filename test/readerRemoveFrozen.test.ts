/**
 * removeStream() while Redis is frozen (SIGSTOP) with a read blocked: it
 * settles once close() is called (close() ends every read), though CLIENT
 * UNBLOCK is never answered.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, take, uniqueName, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.each(CLIENT_KINDS)('removeStream with Redis frozen (%s)', (kind) => {
  it('removeStream settles within 3 s of close()', async () => {
    const srv = await RedisServer.start();
    onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    onTestFinished(() => c.close().catch(() => {}));
    const s = new Stream(uniqueName('rm'), c.redis);
    const s2 = new Stream(uniqueName('rm2'), c.redis);
    const reader = await s.newReader({ blockMs: 10_000 });
    await reader.addStream(s2);
    const sub = reader.subscribe();
    await s.add('e', 'x');
    await take(sub, 1, 3000);
    await new Promise((r) => setTimeout(r, 200)); // the next read blocks
    srv.pause();
    onTestFinished(() => srv.resume());
    const removing = reader.removeStream(s2).then(
      () => 'resolved',
      (e: Error) => `rejected ${e.name}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    await within(reader.close(), 3000, 'close()');
    expect(await within(removing, 3000, 'removeStream after close()')).toMatch(/resolved|rejected/);
  }, 20_000);
});
