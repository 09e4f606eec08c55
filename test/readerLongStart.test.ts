/**
 * A reader that starts from an ID (or a Date) inside a long stream (more
 * than COUNT_CAP = 1000 entries on both sides of its start): its base is
 * counted at the start (in pages), so that entries deleted or trimmed after
 * the start before its first exact check are counted lost (README:
 * "delivered + lost is what was added after its start").
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
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

async function fill(s: Stream, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 500) {
    out.push(
      ...((await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => s.add('e', `p${i + j}`)))) as string[]),
    );
  }
  return out;
}

describe.each(CLIENT_KINDS)('reader started inside a long stream (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  it('entries XDEL-ed after its start, before it read them, are counted lost', async () => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('rls'), c.redis, { maxLen: 0, logger: rec.logger });
    onTestFinished(() => s.destroy().catch(() => {}));
    const ids = await fill(s, 4000);
    const reader = await s.newReader({ startAt: { after: ids[1999] as string }, blockMs: 200 });
    onTestFinished(() => reader.close());
    await c.cmd('XDEL', s.key, ...ids.slice(2500, 2510));
    const got: Event[] = [];
    const sub = reader.subscribe();
    void (async () => {
      for await (const ev of sub) got.push(ev);
    })();
    await waitFor(() => got.length === 1990, { timeout: 10_000, what: '1990 delivered' });
    await new Promise((r) => setTimeout(r, 800));
    await reader.close();
    expect(reader.counters).toEqual({ delivered: 1990, lost: 10 });
  }, 20_000);

  it('a Date start inside a long stream, then trimming past its cursor: delivered + lost = added after the start', async (ctx) => {
    const name = uniqueName('rlt');
    const s = new Stream(name, c.redis, { maxLen: 0 });
    onTestFinished(() => s.destroy().catch(() => {}));
    const warnings = pulseWarnings(name, ctx);
    const ids = await fill(s, 4000);
    // Start at the time of entry 2000 (a Date): 2000 entries before and after.
    const ms = Number((ids[2000] as string).split('-')[0]);
    const before = ids.filter((id) => Number(id.split('-')[0]) < ms).length;
    const reader = await s.newReader({ startAt: new Date(ms), bufferSize: 10, maxPolled: 10, blockMs: 200 });
    onTestFinished(() => reader.close());
    const sub = reader.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    await waitFor(() => sub.size >= 10, { what: 'buffer full' });
    // A producer with a small maxLen trims past the reader's cursor.
    const small = new Stream(name, c.redis, { maxLen: 50 });
    await fill(small, 500);
    const got: Event[] = [];
    for (;;) {
      const r = await it0.next();
      if (r.done) break;
      got.push(r.value as Event);
      if (r.value.text() === 'p499') break;
    }
    await new Promise((r) => setTimeout(r, 800));
    await reader.close();
    const addedAfterStart = 4000 - before + 500;
    expect(
      reader.counters.delivered + reader.counters.lost,
      `${JSON.stringify(reader.counters)}, received ${got.length}, warnings ${warnings.map((w) => w.message).join(' | ')}`,
    ).toBe(addedAfterStart);
  }, 20_000);
});
