/**
 * reader.close() finishes the last loss checks, bounded by 1 s, so that the
 * counters are complete when it resolves: also a check already in flight on
 * the user's client when close() is called (Redis paused by CLIENT PAUSE).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
beforeAll(async () => {
  srv = await RedisServer.start();
});
afterAll(async () => {
  await srv?.stop();
});

describe.each(CLIENT_KINDS)('close() and a loss check in flight (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  it('counters are complete when close() resolves, also when a check was in flight', async () => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('rcc'), c.redis, { maxLen: 0, logger: rec.logger });
    onTestFinished(() => s.destroy().catch(() => {}));
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await s.add('e', `${i}`)) as string);
    const reader = await s.newReader({ startAt: 'oldest', bufferSize: 5, maxPolled: 5, blockMs: 200 });
    onTestFinished(() => reader.close());
    const sub = reader.subscribe();
    await waitFor(() => sub.size >= 5, { what: 'buffer full' });
    // 10 entries ahead of the cursor are deleted: lost for this reader.
    const other = await connect(kind, srv.url);
    onTestFinished(() => other.close());
    await other.cmd('XDEL', s.key, ...ids.slice(20, 30));
    // Redis pauses clients for 1.2 s: the reader's next timed check (within 200 ms) waits in it,
    // and its answer comes about 700 ms into close() (within close()'s 1 s bound; Redis ends a
    // pause up to 100 ms late).
    await other.cmd('CLIENT', 'PAUSE', '1200', 'ALL');
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await reader.close();
    const took = Date.now() - t0;
    const atClose = reader.counters.lost;
    await waitFor(() => reader.counters.lost > 0, { timeout: 4000, what: 'the loss counted at all' }).catch(() => {});
    expect(atClose, `close() took ${took} ms; lost at close ${atClose}, a moment later ${reader.counters.lost}`).toBe(10);
  }, 15_000);
});
