/**
 * A reader held back by a full subscription (fed by stream A) also reads B.
 * B gets 10 entries while the reader is held back (reading nothing, it checks
 * its streams without reads), then is destroyed and written again with at
 * least as many entries: entries-added and max-deleted-entry-id do not go
 * back, yet the 10 entries never read are gone, and must be counted and told
 * (a first entry newer than the last ID generated at the last check, with
 * fewer deleted than there were entries then).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, pulseWarnings, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
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

describe('a stream recreated while the reader is held back, before it read anything of it', () => {
  it('10 entries of B never read (B destroyed, then written with 20) are counted or warned', async (ctx) => {
    const rec = recordingLogger();
    const a = new Stream(uniqueName('ra'), c.redis, { logger: rec.logger });
    const bName = uniqueName('rb');
    const b = new Stream(bName, c.redis, { logger: rec.logger });
    onTestFinished(async () => {
      await a.destroy().catch(() => {});
      await b.destroy().catch(() => {});
    });
    const warnings = pulseWarnings(bName, ctx);
    for (let i = 0; i < 40; i++) await a.add('e', `a${i}`);
    const reader = await a.newReader({ startAt: 'oldest', bufferSize: 5, maxPolled: 5, blockMs: 200 });
    onTestFinished(() => reader.close());
    await reader.addStream(b);
    const sub = reader.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    await waitFor(() => sub.size >= 5, { what: 'buffer full' });
    for (let i = 0; i < 10; i++) await b.add('e', `old${i}`);
    await new Promise((r) => setTimeout(r, 2500));
    await b.destroy();
    for (let i = 0; i < 20; i++) await b.add('e', `new${i}`);
    const got: string[] = [];
    for (;;) {
      const r = await it0.next();
      if (r.done) break;
      got.push(r.value.text());
      if (r.value.text() === 'new19') break;
    }
    await new Promise((r) => setTimeout(r, 1000));
    await reader.close();
    const oldRead = got.filter((t) => t.startsWith('old')).length;
    expect(oldRead).toBe(0);
    const bLines = rec.lines.filter((l) => l.level === 'warn' && JSON.stringify(l.obj ?? {}).includes(bName));
    expect({
      lost: reader.counters.lost,
      told: bLines.length > 0 || warnings.length > 0,
    }).toEqual({ lost: 10, told: true });
  }, 20_000);

  it('B added (10 entries, watched) while the reader is held back, destroyed and written with 20 before the next check: 10 counted', async (ctx) => {
    const rec = recordingLogger();
    const a = new Stream(uniqueName('ra'), c.redis, { logger: rec.logger });
    const bName = uniqueName('rb');
    const b = new Stream(bName, c.redis, { logger: rec.logger });
    onTestFinished(async () => {
      await a.destroy().catch(() => {});
      await b.destroy().catch(() => {});
    });
    const warnings = pulseWarnings(bName, ctx);
    for (let i = 0; i < 40; i++) await a.add('e', `a${i}`);
    for (let i = 0; i < 10; i++) await b.add('e', `old${i}`);
    const reader = await a.newReader({ startAt: 'oldest', bufferSize: 5, maxPolled: 5, blockMs: 200 });
    onTestFinished(() => reader.close());
    const sub = reader.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    await waitFor(() => sub.size >= 5, { what: 'buffer full' });
    await reader.addStream(b, { startAt: 'oldest' });
    await new Promise((r) => setTimeout(r, 1500));
    // Within one idle-check interval: destroyed, then 20 new entries.
    await b.destroy();
    for (let i = 0; i < 20; i++) await b.add('e', `new${i}`);
    const got: string[] = [];
    for (;;) {
      const r = await it0.next();
      if (r.done) break;
      got.push(r.value.text());
      if (r.value.text() === 'new19') break;
    }
    await new Promise((r) => setTimeout(r, 1000));
    await reader.close();
    expect(got.filter((t) => t.startsWith('old')).length).toBe(0);
    const bLines = rec.lines.filter((l) => l.level === 'warn' && JSON.stringify(l.obj ?? {}).includes(bName));
    expect({ lost: reader.counters.lost, told: bLines.length > 0 || warnings.length > 0 }).toEqual({ lost: 10, told: true });
  }, 20_000);
});
