/**
 * Handlers that run long under process(): their events stay with this consumer
 * however long that takes (SEMANTICS.md section 9), so a handler that never
 * returns looked exactly like a slow one, silently (an outside review). It is
 * now said once per event after 10 grace periods.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe.concurrent.each(CLIENT_KINDS)('handlers that run long (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  it('a handler still running after 10 grace periods is said once, with its event', async () => {
    const grace = 300;
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('long'), c.redis, { logger });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: grace });
    let release: () => void = () => {};
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const stop = new AbortController();
    const started = Date.now();
    const run = sink.process(() => blocked, { signal: stop.signal });
    try {
      const id = (await s.add('e', 'x')) as string;
      const said = () => lines.filter((l) => l.level === 'warn' && /a handler is still running/.test(String(l.msg)));
      await waitFor(() => said().length > 0, { timeout: 20 * grace, what: 'the long handler said' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(10 * grace);
      expect(said()[0]?.obj).toMatchObject({ ids: [id], count: 1, stream: s.name });
      // Once: not again at every touch.
      await waitFor(() => Date.now() - started > 14 * grace, { timeout: 10 * grace, what: 'four grace periods more' });
      expect(said()).toHaveLength(1);
    } finally {
      release();
      stop.abort();
      await run;
      await sink.close();
      await s.destroy().catch(() => {});
    }
  });
});
