/**
 * A reader whose startAt is ahead of the stream's last ID (a Date ahead of
 * the Redis clock, or a saved `{ after }` cursor from a clock ahead): events
 * added before that point are, by the contract, not the reader's (it starts
 * "at the first entry added on or after a time"): neither delivered nor
 * counted or reported lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
beforeAll(async () => {
  srv = await RedisServer.start();
});
afterAll(async () => {
  await srv?.stop();
});

describe.concurrent.each(CLIENT_KINDS)('startAt a Date ahead of Redis time (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  it('events before the start time are neither delivered nor reported lost', async (ctx) => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('rfd'), c.redis, { maxLen: 0, logger: rec.logger });
    ctx.onTestFinished(() => s.destroy().catch(() => {}));
    await s.add('e', 'seed');
    const startMs = Date.now() + 1500;
    const reader = await s.newReader({ startAt: new Date(startMs), blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const got: Event[] = [];
    const sub = reader.subscribe();
    void (async () => {
      for await (const ev of sub) got.push(ev);
    })();
    for (let i = 0; i < 20; i++) await s.add('e', `before${i}`);
    await waitFor(() => Date.now() > startMs + 50, { timeout: 3000, what: 'the start time' });
    for (let i = 0; i < 5; i++) await s.add('e', `after${i}`);
    await waitFor(() => got.length === 5, { what: '5 delivered' });
    await new Promise((r) => setTimeout(r, 800));
    await reader.close();
    expect(got.map((e) => e.text())).toEqual(['after0', 'after1', 'after2', 'after3', 'after4']);
    const lines = rec.lines.filter((l) => l.level === 'warn').map((l) => `${l.msg} ${JSON.stringify(l.obj)}`);
    expect(reader.counters, lines.join(' | ')).toEqual({ delivered: 5, lost: 0 });
  }, 20_000);

  it('{ after: id } beyond the last entry (a saved cursor from a clock ahead): events before it are not reported lost', async (ctx) => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('rfa'), c.redis, { maxLen: 0, logger: rec.logger });
    ctx.onTestFinished(() => s.destroy().catch(() => {}));
    await s.add('e', 'seed');
    const afterMs = Date.now() + 1500;
    const reader = await s.newReader({ startAt: { after: `${afterMs}-0` }, blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const got: Event[] = [];
    const sub = reader.subscribe();
    void (async () => {
      for await (const ev of sub) got.push(ev);
    })();
    for (let i = 0; i < 20; i++) await s.add('e', `before${i}`);
    await waitFor(() => Date.now() > afterMs + 50, { timeout: 3000, what: 'the cursor time' });
    for (let i = 0; i < 3; i++) await s.add('e', `after${i}`);
    await waitFor(() => got.length === 3, { what: '3 delivered' });
    await new Promise((r) => setTimeout(r, 800));
    await reader.close();
    expect(reader.counters).toEqual({ delivered: 3, lost: 0 });
  }, 20_000);
});
