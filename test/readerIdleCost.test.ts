/**
 * What a reader over many streams costs Redis when it reads nothing: no
 * checks once its last subscription left or when it is caught up, and a
 * bounded few a second in all while a full subscription holds it back.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** A redis-server of the test's own: its command counts are this test's alone, so the tests run at once. */
async function server(ctx: TestContext): Promise<TestClient> {
  const srv = await RedisServer.start();
  ctx.onTestFinished(() => srv.stop());
  const c = await connect('ioredis', srv.url);
  ctx.onTestFinished(() => c.close());
  return c;
}

async function calls(c: TestClient): Promise<Record<string, number>> {
  const info = String(await c.cmd('INFO', 'commandstats'));
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) out[m[1] as string] = Number(m[2]);
  return out;
}
async function perSecond(c: TestClient, ms: number): Promise<Record<string, number>> {
  const a = await calls(c);
  await new Promise((r) => setTimeout(r, ms));
  const b = await calls(c);
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const x = (v - (a[k] ?? 0)) / (ms / 1000);
    if (x >= 1 && k !== 'info') d[k] = Math.round(x);
  }
  return d;
}

describe.concurrent('idle reader cost', () => {
  it('a reader over 100 streams whose only subscription left (nothing reads) costs no scripts', async (ctx) => {
    const c = await server(ctx);
    const N = 100;
    const streams = Array.from({ length: N }, () => new Stream(uniqueName('idle'), c.redis));
    // The streams filled side by side, each in order.
    await Promise.all(
      streams.map(async (s) => {
        for (let i = 0; i < 30; i++) await s.add('e', `x${i}`);
      }),
    );
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const reader = await first.newReader({ startAt: 'oldest', bufferSize: 10, maxPolled: 10, blockMs: 5000 });
    for (const s of rest) await reader.addStream(s);
    const sub = reader.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    // takes a few, then leaves
    for (let i = 0; i < 5; i++) await it0.next();
    reader.unsubscribe(sub);
    await new Promise((r) => setTimeout(r, 1500));
    const rate = await perSecond(c, 4000);
    await reader.close();
    for (const s of streams) await s.destroy();
    expect(rate).toEqual({});
  }, 60_000);

  it('a reader over 100 streams held back by a full subscription checks a few streams a second in all, not each', async (ctx) => {
    const c = await server(ctx);
    const N = 100;
    const streams = Array.from({ length: N }, () => new Stream(uniqueName('idle'), c.redis));
    // The streams filled side by side, each in order.
    await Promise.all(
      streams.map(async (s) => {
        for (let i = 0; i < 30; i++) await s.add('e', `x${i}`);
      }),
    );
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const reader = await first.newReader({ startAt: 'oldest', bufferSize: 10, maxPolled: 10, blockMs: 5000 });
    for (const s of rest) await reader.addStream(s);
    const sub = reader.subscribe();
    await waitFor(() => sub.size >= 10, { what: 'buffer full' });
    await new Promise((r) => setTimeout(r, 1500));
    // Over more than the longest spacing of a stream's checks (5 s: each stream's checks are spaced
    // by 100 x how long its last one took, which a loaded host stretches; two full `npm test` runs
    // on two cores saw none in 4 s), counting every call, not only rates of 1/s or more.
    const before = await calls(c);
    await new Promise((r) => setTimeout(r, 6000));
    const after = await calls(c);
    await reader.close();
    for (const s of streams) await s.destroy();
    // Held back, it still checks (a stream may be deleted meanwhile), one stream per 200 ms tick at most.
    const scripts = ['evalsha', 'eval'].reduce((n, k) => n + ((after[k] ?? 0) - (before[k] ?? 0)), 0);
    expect(scripts).toBeGreaterThan(0);
    expect(scripts / 6).toBeLessThanOrEqual(6);
  }, 60_000);

  it('a caught-up reader over 100 streams costs no scripts', async (ctx) => {
    const c = await server(ctx);
    const N = 100;
    const streams = Array.from({ length: N }, () => new Stream(uniqueName('idle'), c.redis));
    // The streams filled side by side, each in order.
    await Promise.all(
      streams.map(async (s) => {
        for (let i = 0; i < 3; i++) await s.add('e', `x${i}`);
      }),
    );
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const reader = await first.newReader({ startAt: 'oldest', blockMs: 5000 });
    for (const s of rest) await reader.addStream(s);
    let n = 0;
    const sub = reader.subscribe();
    void (async () => {
      for await (const _ of sub) n++;
    })();
    await waitFor(() => n === 3 * N, { timeout: 10_000, what: 'all read' });
    await new Promise((r) => setTimeout(r, 1500));
    const rate = await perSecond(c, 4000);
    await reader.close();
    for (const s of streams) await s.destroy();
    expect((rate.evalsha ?? 0) + (rate.eval ?? 0)).toBeLessThan(5);
  }, 60_000);
});
