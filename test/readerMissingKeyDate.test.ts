/**
 * A reader starts at a Date in the past on a stream key that does not exist
 * yet. Every entry the stream will get has an ID after that Date, so every
 * one is the reader's (as with 'oldest'): trims before it reads them are
 * countable exactly, not absorbed into an unknown base by the first exact
 * check as for a start past the end (a Date ahead of Redis' clock).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
let c: TestClient;
beforeAll(async () => {
  srv = await RedisServer.start();
  c = await connect('ioredis', srv.url);
});
afterAll(async () => {
  await c?.close();
  await srv?.stop();
});

describe('start at a past Date on a missing key', () => {
  for (const startAt of ['oldest', 'date'] as const) {
    it(`startAt ${startAt}: 20 entries trimmed before the held-back reader read them are counted`, async () => {
      const a = new Stream(uniqueName('ma'), c.redis);
      const b = new Stream(uniqueName('mb'), c.redis, { maxLen: 0 });
      onTestFinished(async () => {
        await a.destroy().catch(() => {});
        await b.destroy().catch(() => {});
      });
      for (let i = 0; i < 40; i++) await a.add('e', `a${i}`);
      const reader = await a.newReader({ startAt: 'oldest', bufferSize: 5, maxPolled: 5, blockMs: 200 });
      onTestFinished(() => reader.close());
      const sub = reader.subscribe();
      const it0 = sub[Symbol.asyncIterator]();
      await waitFor(() => sub.size >= 5, { what: 'buffer full' });
      await reader.addStream(b, { startAt: startAt === 'oldest' ? 'oldest' : new Date(Date.now() - 60_000) });
      for (let i = 0; i < 30; i++) await b.add('e', `b${i}`);
      await c.cmd('XTRIM', b.key, 'MAXLEN', 10);
      let bRead = 0;
      for (;;) {
        const r = await it0.next();
        if (r.done) break;
        if (r.value.text().startsWith('b')) bRead++;
        if (r.value.text() === 'b29') break;
      }
      await new Promise((r) => setTimeout(r, 800));
      await reader.close();
      expect({ bRead, lost: reader.counters.lost }).toEqual({ bRead: 10, lost: 20 });
    }, 20_000);
  }
});
