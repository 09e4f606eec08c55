/**
 * Stream: add, remove, topic, destroy, trimming, onlyIfStreamExists and TTL,
 * against a real Redis with both clients. Payload bytes and the wire format
 * are in streamBytes.test.ts, adds of one tick in streamAddBatch.test.ts.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { num, type RawEntries, streamSuite } from './support/streamSuite.js';

describe.each(CLIENT_KINDS)('Stream (%s)', (kind) => {
  let c: TestClient;
  /** A binary-safe client of our own, to look at the exact bytes in Redis. */
  let bin: Redis;

  beforeAll(async () => {
    c = await connect(kind);
    bin = new Redis(sharedUrl(), { lazyConnect: true });
    bin.on('error', () => {});
    await bin.connect();
  });
  afterAll(async () => {
    bin.disconnect();
    await c.close();
  });
  const { newStream, rawEntries, readAll } = streamSuite(
    () => c,
    () => bin,
  );

  it('add appends an entry with n and p and resolves to its ID (Go TestAdd)', async () => {
    const s = newStream();
    expect(s.name).toMatch(/^st-/);
    const id = await s.add('foo', 'bar');
    expect(id).toMatch(/^\d+-\d+$/);
    expect(await num(c, 'XLEN', s.key)).toBe(1);
    const entries = await rawEntries(`pulse:stream:${s.name}`);
    expect(entries).toEqual([[id, ['n', 'foo', 'p', 'bar']]]);
  });

  it('remove deletes entries by ID (Go TestRemove)', async () => {
    const s = newStream();
    const id1 = await s.add('foo', 'bar');
    const id2 = await s.add('foo2', 'bar2');
    expect(await num(c, 'XLEN', s.key)).toBe(2);
    await s.remove(id1 as string);
    expect(await num(c, 'XLEN', s.key)).toBe(1);
    expect((await rawEntries(s.key)).map((e) => e[0])).toEqual([id2]);
  });

  it('remove deletes several IDs at once, ignores unknown IDs, and does nothing with none', async () => {
    const s = newStream();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('e', String(i))) as string);
    await s.remove();
    expect(await num(c, 'XLEN', s.key)).toBe(5);
    await s.remove(ids[0] as string, ids[2] as string, ids[4] as string, '1-1');
    expect((await rawEntries(s.key)).map((e) => e[0])).toEqual([ids[1], ids[3]]);
    await s.remove(ids[0] as string); // already gone
    expect(await num(c, 'XLEN', s.key)).toBe(2);
  });

  it('add with a topic stores it in t (Go TestTopic)', async () => {
    const s = newStream();
    const id = await s.add('bar', 'baz', { topic: 'foo' });
    expect(await num(c, 'XLEN', s.key)).toBe(1);
    expect(await rawEntries(s.key)).toEqual([[id, ['n', 'bar', 'p', 'baz', 't', 'foo']]]);
    const [ev] = await readAll(s, 1);
    expect(ev?.topic).toBe('foo');
    expect(ev?.eventName).toBe('bar');
    expect(ev?.text()).toBe('baz');
  });

  it('destroy deletes the stream key, and works on a stream that never existed (Go TestDestroy)', async () => {
    const s = newStream();
    await s.destroy();
    expect(await num(c, 'EXISTS', s.key)).toBe(0);
    const s2 = newStream();
    await s2.add('foo', 'bar');
    expect(await num(c, 'EXISTS', s2.key)).toBe(1);
    await s2.destroy();
    expect(await num(c, 'EXISTS', s2.key)).toBe(0);
    // A destroyed stream can be used again.
    await s2.add('foo', 'again');
    expect(await num(c, 'XLEN', s2.key)).toBe(1);
  });

  it('event createdAt is the milliseconds of the ID (Go TestEventCreatedAt)', async () => {
    const s = newStream();
    // An entry written by someone else with a chosen ID.
    await c.cmd('XADD', s.key, '1700000000123-7', 'n', 'old', 'p', 'y');
    const before = Date.now();
    const id = (await s.add('e', 'x')) as string;
    const after = Date.now();
    const ms = Number(id.split('-')[0]);
    const evs = await readAll(s, 2);
    const byId = new Map(evs.map((e) => [e.id, e]));
    const ev = byId.get(id);
    expect(ev?.createdAt).toBeInstanceOf(Date);
    expect(ev?.createdAt.getTime()).toBe(ms);
    // Same host: the server clock is close to ours.
    expect(ms).toBeGreaterThan(before - 60_000);
    expect(ms).toBeLessThan(after + 60_000);
    expect(byId.get('1700000000123-7')?.createdAt.getTime()).toBe(1_700_000_000_123);
    expect(byId.get('1700000000123-7')?.createdAt.toISOString()).toBe('2023-11-14T22:13:20.123Z');
  });

  // ---- trimming ---------------------------------------------------------------------------------

  it('maxLen defaults to 1000 and trims approximately', async () => {
    const s = newStream();
    expect(s.maxLen).toBe(1000);
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.add('e', String(i))));
    const len = await num(c, 'XLEN', s.key);
    expect(len).toBeGreaterThanOrEqual(1000);
    expect(len).toBeLessThan(2000);
    // The newest entries are kept.
    const last = (await c.cmd('XREVRANGE', s.key, '+', '-', 'COUNT', 1)) as RawEntries;
    expect(last[0]?.[1]).toEqual(['n', 'e', 'p', '2499']);
  });

  it('maxLen 100: 5000 adds leave far fewer than 5000 and at least 100 entries', async () => {
    const s = newStream({ maxLen: 100 });
    expect(s.maxLen).toBe(100);
    await Promise.all(Array.from({ length: 5000 }, (_, i) => s.add('e', String(i))));
    const len = await num(c, 'XLEN', s.key);
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(1000);
  });

  it('maxLen 0 never trims', async () => {
    const s = newStream({ maxLen: 0 });
    expect(s.maxLen).toBe(0);
    await Promise.all(Array.from({ length: 1500 }, (_, i) => s.add('e', String(i))));
    expect(await num(c, 'XLEN', s.key)).toBe(1500);
  });

  it('maxLen applies with a TTL too (the add goes through a script)', async () => {
    const s = newStream({ maxLen: 100, ttlMs: 60_000 });
    await Promise.all(Array.from({ length: 3000 }, (_, i) => s.add('e', String(i))));
    const len = await num(c, 'XLEN', s.key);
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(1000);
  });

  // ---- onlyIfStreamExists -------------------------------------------------------------------------

  it('onlyIfStreamExists adds nothing and resolves undefined when the key is missing', async () => {
    const s = newStream();
    expect(await s.add('e', 'x', { onlyIfStreamExists: true })).toBeUndefined();
    expect(await num(c, 'EXISTS', s.key)).toBe(0);
    const id = await s.add('e', 'first');
    expect(id).toMatch(/^\d+-\d+$/);
    const id2 = await s.add('e', 'second', { onlyIfStreamExists: true, topic: 't1' });
    expect(id2).toMatch(/^\d+-\d+$/);
    expect(await rawEntries(s.key)).toEqual([
      [id, ['n', 'e', 'p', 'first']],
      [id2, ['n', 'e', 'p', 'second', 't', 't1']],
    ]);
    // onlyIfStreamExists: false is the default behaviour.
    const s2 = newStream();
    expect(await s2.add('e', 'x', { onlyIfStreamExists: false })).toMatch(/^\d+-\d+$/);
  });

  it('onlyIfStreamExists with a TTL creates nothing when the key is missing', async () => {
    for (const slidingTtl of [false, true]) {
      const s = newStream({ ttlMs: 60_000, slidingTtl });
      expect(await s.add('e', 'x', { onlyIfStreamExists: true })).toBeUndefined();
      expect(await num(c, 'EXISTS', s.key)).toBe(0);
      await s.add('e', 'x');
      expect(await s.add('e', 'y', { onlyIfStreamExists: true })).toMatch(/^\d+-\d+$/);
      expect(await num(c, 'XLEN', s.key)).toBe(2);
    }
  });

  // ---- TTL ----------------------------------------------------------------------------------------

  /** Waits until the server clock has moved past `ms` (so a refreshed expiry would differ). */
  async function serverTimePast(ms: number): Promise<void> {
    await waitFor(
      async () => {
        const [sec, usec] = (await c.cmd('TIME')) as [string, string];
        return Number(sec) * 1000 + Math.floor(Number(usec) / 1000) > ms;
      },
      { what: 'server time to advance' },
    );
  }

  async function serverNow(): Promise<number> {
    const [sec, usec] = (await c.cmd('TIME')) as [string, string];
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }

  it('absolute TTL: set when the key is created, not refreshed by later adds', async () => {
    const s = newStream({ ttlMs: 60_000 });
    await s.add('e', '1');
    const pttl = await num(c, 'PTTL', s.key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    const expireAt = await num(c, 'PEXPIRETIME', s.key);
    await serverTimePast((await serverNow()) + 20);
    await s.add('e', '2');
    await s.add('e', '3', { topic: 't' });
    expect(await num(c, 'PEXPIRETIME', s.key)).toBe(expireAt);
    expect(await num(c, 'XLEN', s.key)).toBe(3);
  });

  it('sliding TTL: every add refreshes the expiry', async () => {
    const s = newStream({ ttlMs: 60_000, slidingTtl: true });
    await s.add('e', '1');
    const first = await num(c, 'PEXPIRETIME', s.key);
    expect(first).toBeGreaterThan(0);
    await serverTimePast((await serverNow()) + 20);
    await s.add('e', '2');
    const second = await num(c, 'PEXPIRETIME', s.key);
    expect(second).toBeGreaterThan(first);
    const pttl = await num(c, 'PTTL', s.key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  // 'the key really expires after ttlMs': below, both clients at once.

  it('without ttlMs the key has no expiry', async () => {
    const s = newStream();
    await s.add('e', 'x');
    expect(await num(c, 'PTTL', s.key)).toBe(-1);
  });

  it('the TTL is also applied when newSink creates the key', async () => {
    const s = newStream({ ttlMs: 60_000 });
    const sink = await s.newSink('sk', { blockMs: 200 });
    onTestFinished(() => sink.close());
    expect(await num(c, 'EXISTS', s.key)).toBe(1);
    const pttl = await num(c, 'PTTL', s.key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    // Absolute: a later add does not refresh it.
    const expireAt = await num(c, 'PEXPIRETIME', s.key);
    await serverTimePast((await serverNow()) + 20);
    await s.add('e', 'x');
    expect(await num(c, 'PEXPIRETIME', s.key)).toBe(expireAt);
  });

  // ---- destroy ------------------------------------------------------------------------------------

  async function checkDestroyRemovesBookkeeping(name: string, prefix: string): Promise<void> {
    const s = newStream(undefined, name);
    const dead = newStream(undefined, `${name}:dead`);
    await s.add('e', 'x');
    await dead.add('dead', 'letter');
    const registry = `${prefix}:sinks`;
    const consumers = `${prefix}:sink:sk:consumers`;
    const lease = `${prefix}:sink:sk:lease`;
    const consumers2 = `${prefix}:sink:other:consumers`;

    const sink = await s.newSink('sk', { blockMs: 200 });
    const sink2 = await s.newSink('other', { blockMs: 200 });
    try {
      expect(await num(c, 'EXISTS', registry)).toBe(1);
      expect(((await c.cmd('SMEMBERS', registry)) as string[]).sort()).toEqual(['other', 'sk']);
      expect(await num(c, 'EXISTS', consumers)).toBe(1);
      expect(await num(c, 'EXISTS', consumers2)).toBe(1);
    } finally {
      await sink.close();
      await sink2.close();
    }
    // What a crashed consumer would leave behind.
    await c.cmd('ZADD', consumers, '1', 'ghost');
    await c.cmd('SET', lease, 'ghost');
    await c.cmd('ZADD', consumers2, '1', 'ghost');

    await s.destroy();
    expect(await num(c, 'EXISTS', s.key)).toBe(0);
    expect(await num(c, 'EXISTS', registry)).toBe(0);
    expect(await num(c, 'EXISTS', consumers)).toBe(0);
    expect(await num(c, 'EXISTS', lease)).toBe(0);
    expect(await num(c, 'EXISTS', consumers2)).toBe(0);
    // The dead-letter stream is a stream of its own and stays.
    expect(await num(c, 'XLEN', `pulse:stream:${name}:dead`)).toBe(1);
  }

  it('destroy deletes the sink registry and every sink key, and leaves the dead-letter stream alone', async () => {
    const name = uniqueName('st');
    await checkDestroyRemovesBookkeeping(name, `{pulse:stream:${name}}`);
  });

  it('destroy of a stream whose name has a {tag} deletes the bookkeeping keys under that tag', async () => {
    const tag = uniqueName('tg');
    const name = `{${tag}}orders`;
    await checkDestroyRemovesBookkeeping(name, `{${tag}}:pulse:stream:${name}`);
  });

  it('destroy leaves other streams alone', async () => {
    const a = newStream();
    const b = newStream(undefined, `${a.name}x`);
    await a.add('e', 'x');
    await b.add('e', 'y');
    await a.destroy();
    expect(await num(c, 'XLEN', b.key)).toBe(1);
  });
});

/**
 * The one test of the file that waits out a TTL (1.5 s): both clients at once, in a block of its own
 * (the blocks above run their tests one after the other and register cleanups with the global
 * onTestFinished; this one has a client and a stream of its own per test, released through its context).
 */
describe.concurrent.each(CLIENT_KINDS)('Stream (%s): TTL expiry', (kind) => {
  it('the key really expires after ttlMs', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    // 1.5 s: with 150 ms, a loaded CI run's add and EXISTS took longer than the TTL and found the key gone.
    const s = new Stream(uniqueName('st'), c.redis, { ttlMs: 1500 });
    ctx.onTestFinished(() => s.destroy());
    await s.add('e', 'x');
    expect(await num(c, 'EXISTS', s.key)).toBe(1);
    await waitFor(async () => (await num(c, 'EXISTS', s.key)) === 0, { timeout: 10_000, what: 'the stream key to expire' });
  });
});
