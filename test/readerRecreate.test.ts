/**
 * A reader's stream destroyed (or expired, `ttlMs`) while its subscription
 * is full (backpressure), then created anew by the next add a second later:
 * the reader reads nothing meanwhile, yet the unread entries of the old key
 * must be reported (counted, a "stream key is gone" line, or a PulseWarning).
 * A stream with entries ahead is checked about once a second without reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  connect,
  pulseWarnings,
  recordingLogger,
  type TestClient,
  uniqueName,
  waitFor,
} from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
beforeAll(async () => {
  srv = await RedisServer.start();
});
afterAll(async () => {
  await srv?.stop();
});

describe.concurrent.each(CLIENT_KINDS)('stream recreated under a reader (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  for (const withLogger of [true, false]) {
    it(`unread entries of a deleted-and-recreated stream are reported (${withLogger ? 'logger' : 'PulseWarning'})`, async (ctx) => {
      const rec = recordingLogger();
      const name = uniqueName('rcre');
      const s = new Stream(name, c.redis, { maxLen: 0, ...(withLogger ? { logger: rec.logger } : {}) });
      ctx.onTestFinished(() => s.destroy().catch(() => {}));
      const warnings = pulseWarnings(name, ctx);
      for (let i = 0; i < 50; i++) await s.add('e', `old${i}`);
      const reader = await s.newReader({ startAt: 'oldest', bufferSize: 5, maxPolled: 5, blockMs: 200 });
      ctx.onTestFinished(() => reader.close());
      const sub = reader.subscribe();
      const it0 = sub[Symbol.asyncIterator]();
      // Backpressure: the reader reads 5 and waits. Let its first loss check run.
      await waitFor(() => sub.size >= 5, { what: 'buffer full' });
      await new Promise((r) => setTimeout(r, 500));
      // The stream is destroyed; a producer adds to it again a second later.
      // The reader, held back by its full subscription, reads nothing meanwhile.
      await s.destroy();
      await new Promise((r) => setTimeout(r, 1000));
      await s.add('e', 'new0');
      await s.add('e', 'new1');
      const got: Event[] = [];
      for (;;) {
        const r = await it0.next();
        if (r.done) break;
        got.push(r.value as Event);
        if (r.value.text() === 'new1') break;
      }
      await new Promise((r) => setTimeout(r, 800));
      await reader.close();
      const delivered = got.length; // 5..10 old ones + 2 new ones
      const unreadOld = 50 - (delivered - 2);
      expect(unreadOld).toBeGreaterThan(30);
      const lostLines = rec.lines.filter((l) => l.level === 'warn');
      const reported = reader.counters.lost > 0 || lostLines.length > 0 || warnings.some((w) => /LOST/.test(String(w.code)));
      expect(
        reported,
        `delivered ${delivered} (${unreadOld} old entries never read), counters ${JSON.stringify(reader.counters)}, ` +
          `lines ${JSON.stringify(lostLines.map((l) => l.msg))}, warnings ${warnings.length}`,
      ).toBe(true);
      // Counted: the 45 ahead at the last check, less the 2 new ones when the
      // check that saw the new key came after reading them.
      expect(reader.counters.lost).toBeGreaterThanOrEqual(unreadOld - 2);
      expect(reader.counters.lost).toBeLessThanOrEqual(unreadOld);
    }, 20_000);
  }

  it('unread entries of a stream that expired (ttlMs) and was added to again are reported', async (ctx) => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('rttl'), c.redis, { maxLen: 0, ttlMs: 1500, logger: rec.logger });
    ctx.onTestFinished(() => s.destroy().catch(() => {}));
    for (let i = 0; i < 50; i++) await s.add('e', `old${i}`);
    const reader = await s.newReader({ startAt: 'oldest', bufferSize: 5, maxPolled: 5, blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const sub = reader.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    await waitFor(() => sub.size >= 5, { what: 'buffer full' });
    await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { timeout: 5000, what: 'the stream expired' });
    await s.add('e', 'new0');
    await s.add('e', 'new1');
    const got: Event[] = [];
    for (;;) {
      const r = await it0.next();
      if (r.done) break;
      got.push(r.value as Event);
      if (r.value.text() === 'new1') break;
    }
    await new Promise((r) => setTimeout(r, 800));
    await reader.close();
    const lostLines = rec.lines.filter((l) => l.level === 'warn');
    expect(
      reader.counters.lost > 0 || lostLines.length > 0,
      `received ${got.length} (45 old never read), counters ${JSON.stringify(reader.counters)}`,
    ).toBe(true);
    const unreadOld = 50 - (got.length - 2);
    expect(reader.counters.lost).toBeGreaterThanOrEqual(unreadOld - 2);
    expect(reader.counters.lost).toBeLessThanOrEqual(unreadOld);
  }, 20_000);
});
