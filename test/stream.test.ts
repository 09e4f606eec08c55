/**
 * Stream: add, remove, topic, destroy, trimming, TTL, payload bytes and the
 * wire format shared with Go Pulse, against a real Redis with both clients.
 */
import { Redis } from 'ioredis';
import { createClient, TimeoutError } from 'redis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type Event, PulseError, type Reader, Stream, type StreamOptions } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

type RawEntries = Array<[string, string[]]>;

/** Numeric reply of a raw command (clients differ in number vs string). */
async function num(c: TestClient, ...args: (string | number)[]): Promise<number> {
  return Number(await c.cmd(...args));
}

function isAscending(ids: string[]): boolean {
  const parse = (id: string): [bigint, bigint] => {
    const [ms = '0', seq = '0'] = id.split('-');
    return [BigInt(ms), BigInt(seq)];
  };
  for (let i = 1; i < ids.length; i++) {
    const [am, as] = parse(ids[i - 1] as string);
    const [bm, bs] = parse(ids[i] as string);
    if (!(am < bm || (am === bm && as < bs))) return false;
  }
  return true;
}

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

  /** A stream with a unique name, destroyed when the test ends. */
  function newStream(options?: StreamOptions, name = uniqueName('st')): Stream {
    const s = new Stream(name, c.redis, options);
    onTestFinished(() => s.destroy());
    return s;
  }

  async function newReader(s: Stream, options: Parameters<Stream['newReader']>[0] = {}): Promise<Reader> {
    const r = await s.newReader({ blockMs: 200, ...options });
    onTestFinished(() => r.close());
    return r;
  }

  async function rawEntries(key: string): Promise<RawEntries> {
    return (await c.cmd('XRANGE', key, '-', '+')) as RawEntries;
  }

  /** Entries with every field as a Buffer, whatever the client. */
  async function rawBytes(key: string): Promise<Array<[string, Buffer[]]>> {
    const reply = (await bin.callBuffer('XRANGE', key, '-', '+')) as Array<[Buffer, Buffer[]]>;
    return reply.map(([id, fields]) => [id.toString(), fields]);
  }

  /** Reads back every event of the stream from the oldest. */
  async function readAll(s: Stream, n: number): Promise<Event[]> {
    const r = await newReader(s, { startAt: 'oldest' });
    const sub = r.subscribe();
    const events = await take(sub, n, 10_000);
    await r.close();
    return events;
  }

  // ---- Go TestAdd, TestRemove, TestTopic, TestDestroy, TestEventCreatedAt -------------------

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

  it('the key really expires after ttlMs', async () => {
    const s = newStream({ ttlMs: 150 });
    await s.add('e', 'x');
    expect(await num(c, 'EXISTS', s.key)).toBe(1);
    await waitFor(async () => (await num(c, 'EXISTS', s.key)) === 0, { what: 'the stream key to expire' });
  });

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

  // ---- payload bytes --------------------------------------------------------------------------------

  for (const [ttl, together] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    const how = `${ttl ? ', with a TTL' : ''}${together ? ', all added in one tick (one script call)' : ''}`;
    it(`payloads round-trip bit for bit${how}`, async () => {
      const s = newStream(ttl ? { ttlMs: 60_000 } : undefined);
      const all256 = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const nonUtf8 = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0x00]);
      const backing = new Uint8Array([9, 9, 9, 1, 2, 3, 0, 255, 9, 9]);
      const view = backing.subarray(3, 8);
      const view2 = new Uint8Array(backing.buffer, 5, 3);
      const text = 'héllo wörld 🎉🚀 ✓ 名前';
      const pooled = Buffer.from('small pooled buffer'); // a view into Node's shared pool, with an offset
      const cases: Array<[Uint8Array | string, Buffer]> = [
        [all256, all256],
        [nonUtf8, nonUtf8],
        [new Uint8Array(0), Buffer.alloc(0)],
        ['', Buffer.alloc(0)],
        [view, Buffer.from([1, 2, 3, 0, 255])],
        [view2, Buffer.from([3, 0, 255])],
        [text, Buffer.from(text, 'utf8')],
        [pooled, Buffer.from('small pooled buffer')],
        [new Uint8Array([0]), Buffer.from([0])],
      ];
      const ids: string[] = [];
      if (together) ids.push(...((await Promise.all(cases.map(([p]) => s.add('bytes', p)))) as string[]));
      else for (const [p] of cases) ids.push((await s.add('bytes', p)) as string);

      // In Redis, exactly these bytes.
      const raw = await rawBytes(s.key);
      expect(raw.map((e) => e[0])).toEqual(ids);
      raw.forEach(([, fields], i) => {
        expect(fields[3]?.equals(cases[i]?.[1] as Buffer), `raw payload ${i}`).toBe(true);
      });

      // Read back, exactly these bytes.
      const evs = await readAll(s, cases.length);
      evs.forEach((ev, i) => {
        expect(ev.id).toBe(ids[i]);
        expect(Buffer.isBuffer(ev.payload)).toBe(true);
        expect(ev.payload.equals(cases[i]?.[1] as Buffer), `read payload ${i}`).toBe(true);
      });
      expect(evs[6]?.text()).toBe(text);
      // The source views were not modified.
      expect([...backing]).toEqual([9, 9, 9, 1, 2, 3, 0, 255, 9, 9]);
    });
  }

  it('json() and text() decode the payload', async () => {
    const s = newStream();
    await s.add('j', JSON.stringify({ a: 1, b: ['ü', null] }));
    const [ev] = await readAll(s, 1);
    expect(ev?.json()).toEqual({ a: 1, b: ['ü', null] });
    expect(ev?.text()).toBe('{"a":1,"b":["ü",null]}');
  });

  it('event names and topics keep non-ASCII text', async () => {
    const s = newStream();
    await s.add('naïve-🎉', 'x', { topic: 'tópico/🚀' });
    expect(await rawEntries(s.key)).toEqual([[expect.any(String), ['n', 'naïve-🎉', 'p', 'x', 't', 'tópico/🚀']]]);
    const [ev] = await readAll(s, 1);
    expect(ev?.eventName).toBe('naïve-🎉');
    expect(ev?.topic).toBe('tópico/🚀');
  });

  // ---- wire format ------------------------------------------------------------------------------------

  it('entry fields are exactly n, p and t (t only when the topic is not empty)', async () => {
    const s = newStream();
    const a = await s.add('ev-a', 'pa');
    const b = await s.add('ev-b', 'pb', { topic: 'tb' });
    const d = await s.add('ev-c', 'pc', { topic: '' });
    const e = await s.add('', '');
    expect(await rawEntries(s.key)).toEqual([
      [a, ['n', 'ev-a', 'p', 'pa']],
      [b, ['n', 'ev-b', 'p', 'pb', 't', 'tb']],
      [d, ['n', 'ev-c', 'p', 'pc']],
      [e, ['n', '', 'p', '']],
    ]);
    expect(await c.cmd('TYPE', `pulse:stream:${s.name}`)).toBe('stream');
    const evs = await readAll(s, 4);
    expect(evs.map((x) => x.topic)).toEqual([undefined, 'tb', undefined, undefined]);
    expect(evs.map((x) => x.streamName)).toEqual([s.name, s.name, s.name, s.name]);
    expect(evs.map((x) => x.sinkName)).toEqual([undefined, undefined, undefined, undefined]);
    expect(evs.map((x) => x.deliveryCount)).toEqual([1, 1, 1, 1]);
  });

  it('a Stream instance is not needed to read what another instance added (shared by name)', async () => {
    const s = newStream();
    const other = new Stream(s.name, c.redis);
    const id = await other.add('e', 'from other');
    const [ev] = await readAll(s, 1);
    expect(ev?.id).toBe(id);
    expect(ev?.text()).toBe('from other');
  });

  // ---- concurrency --------------------------------------------------------------------------------------

  it('2000 concurrent adds all succeed with increasing IDs', async () => {
    const s = newStream({ maxLen: 0 });
    const ids = (await Promise.all(Array.from({ length: 2000 }, (_, i) => s.add('e', String(i))))) as string[];
    expect(ids.every((id) => typeof id === 'string' && /^\d+-\d+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(2000);
    expect(isAscending(ids)).toBe(true);
    expect(await num(c, 'XLEN', s.key)).toBe(2000);
    const raw = await rawEntries(s.key);
    expect(raw.map((e) => e[0])).toEqual(ids);
    expect(raw.map((e) => e[1][3])).toEqual(ids.map((_, i) => String(i)));
  });

  it('concurrent adds from two Stream instances with TTL all land', async () => {
    const s = newStream({ maxLen: 0, ttlMs: 60_000, slidingTtl: true });
    const s2 = new Stream(s.name, c.redis, { maxLen: 0, ttlMs: 60_000 });
    const ids = (await Promise.all(Array.from({ length: 1000 }, (_, i) => (i % 2 ? s : s2).add('e', String(i))))) as string[];
    expect(new Set(ids).size).toBe(1000);
    expect(isAscending(ids)).toBe(true);
    expect(await num(c, 'XLEN', s.key)).toBe(1000);
  });
  // ---- adds of one tick: one script call per stream ------------------------------------------------------

  it('adds of one tick with mixed options keep their order and options on each stream', async () => {
    const a = newStream({ maxLen: 0 });
    const missing = newStream();
    const ttl = newStream({ maxLen: 0, ttlMs: 60_000 });
    await a.add('first', '0');
    const [id0] = ((await c.cmd('XRANGE', a.key, '-', '+')) as RawEntries).map((e) => e[0]);
    const results = await Promise.all([
      a.add('e', '1'),
      missing.add('e', 'x', { onlyIfStreamExists: true }),
      ttl.add('e', 't1'),
      a.add('e', '2', { topic: 'tp' }),
      a.add('e', '3', { onlyIfStreamExists: true }),
      a.remove(id0 as string),
      a.add('e', '4', { topic: '' }),
      ttl.add('e', 't2'),
      missing.add('e', 'y', { onlyIfStreamExists: true }),
      a.add('e', '5'),
    ]);
    const [i1, m1, t1, i2, i3, , i4, t2, m2, i5] = results;
    expect(m1).toBeUndefined();
    expect(m2).toBeUndefined();
    expect(await c.cmd('EXISTS', missing.key)).toBe(0);
    const ids = [i1, i2, i3, i4, i5] as string[];
    expect(isAscending(ids)).toBe(true);
    expect(await rawEntries(a.key)).toEqual([
      [i1, ['n', 'e', 'p', '1']],
      [i2, ['n', 'e', 'p', '2', 't', 'tp']],
      [i3, ['n', 'e', 'p', '3']],
      [i4, ['n', 'e', 'p', '4']],
      [i5, ['n', 'e', 'p', '5']],
    ]);
    expect(await rawEntries(ttl.key)).toEqual([
      [t1, ['n', 'e', 'p', 't1']],
      [t2, ['n', 'e', 'p', 't2']],
    ]);
    const pttl = await num(c, 'PTTL', ttl.key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('adds of one tick in every shape (trimmed or not, NOMKSTREAM or not, topic or not) store the right fields', async () => {
    for (const maxLen of [0, 50]) {
      const s = newStream({ maxLen });
      await s.add('seed', 's');
      const shapes: Array<[string, { topic?: string; onlyIfStreamExists?: boolean }]> = [
        ['1', {}],
        ['2', { topic: 't2' }],
        ['3', { onlyIfStreamExists: true }],
        ['4', { onlyIfStreamExists: true, topic: 't4' }],
        ['5', {}],
        ['6', { onlyIfStreamExists: true }],
      ];
      const ids = await Promise.all(shapes.map(([p, o]) => s.add('e', p, o)));
      expect(isAscending(ids as string[])).toBe(true);
      const raw = await rawEntries(s.key);
      expect(raw.slice(1)).toEqual(shapes.map(([p, o], i) => [ids[i], ['n', 'e', 'p', p, ...(o.topic ? ['t', o.topic] : [])]]));
    }
  });

  it('adds of one tick keep each name and topic whatever their mix (shared name, several names, some topics)', async () => {
    // Three layouts of the merged call: one shared name, a name per event, a name and a topic per event.
    const mixes: Array<Array<[string, string | undefined]>> = [
      [
        ['same', undefined],
        ['same', undefined],
        ['same', undefined],
      ],
      [
        ['a', undefined],
        ['', undefined],
        ['b', undefined],
        ['a', undefined],
      ],
      [
        ['same', undefined],
        ['same', 'tp'],
        ['same', undefined],
      ],
      [
        ['x', ''],
        ['y', 'only one'],
        ['', undefined],
      ],
    ];
    for (const mix of mixes) {
      const s = newStream({ maxLen: 0 });
      const ids = await Promise.all(mix.map(([n, t], i) => s.add(n, `p${i}`, t === undefined ? undefined : { topic: t })));
      expect(await rawEntries(s.key)).toEqual(mix.map(([n, t], i) => [ids[i], ['n', n, 'p', `p${i}`, ...(t ? ['t', t] : [])]]));
    }
  });

  it('a failing add in a tick fails alone: adds to other streams in the same tick succeed', async () => {
    const good = newStream({ maxLen: 0 });
    const bad = newStream();
    await c.cmd('SET', bad.key, 'not a stream');
    const settled = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => (i % 3 === 1 ? bad : good).add('e', String(i))),
    );
    settled.forEach((r, i) => {
      if (i % 3 === 1) {
        expect(r.status, `add ${i} to the string key`).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as PulseError;
        expect(err).toBeInstanceOf(PulseError);
        expect(err.code).toBe('WRONGTYPE');
        expect(err.message).toContain(bad.name);
      } else {
        expect(r.status, `add ${i} to the stream`).toBe('fulfilled');
      }
    });
    const ids = settled.filter((_, i) => i % 3 !== 1).map((r) => (r as PromiseFulfilledResult<string>).value);
    const raw = await rawEntries(good.key);
    expect(raw.map((e) => e[0])).toEqual(ids);
    expect(raw.map((e) => e[1][3])).toEqual(Array.from({ length: 300 }, (_, i) => String(i)).filter((_, i) => i % 3 !== 1));
    expect(await c.cmd('GET', bad.key)).toBe('not a stream');
  });

  it('adds of one tick larger than one script call (count and bytes) all land, in order, bit for bit', async () => {
    const s = newStream({ maxLen: 0 });
    const big = Array.from({ length: 12 }, (_, i) => Buffer.alloc(100_000 + i, i));
    const small = Array.from({ length: 700 }, (_, i) => Buffer.from([i & 255, (i >> 8) & 255, 0, 255]));
    const payloads = [...small.slice(0, 350), ...big, ...small.slice(350)];
    const ids = (await Promise.all(payloads.map((p) => s.add('e', p)))) as string[];
    expect(isAscending(ids)).toBe(true);
    const raw = await rawBytes(s.key);
    expect(raw.map((e) => e[0])).toEqual(ids);
    raw.forEach(([, fields], i) => {
      expect(fields[3]?.equals(payloads[i] as Buffer), `payload ${i}`).toBe(true);
    });
  });

  it('adds of later ticks land after the script calls of an earlier tick still being sent, in order', async () => {
    // Many adds of one tick leave one script call per turn of the event
    // loop; what is added meanwhile must queue behind them, not overtake.
    const s = newStream({ maxLen: 0 });
    const other = newStream({ maxLen: 0 });
    const pending: Promise<string | undefined>[] = [];
    const wave = (n: number): void => {
      for (let i = 0; i < n; i++) pending.push(s.add('e', String(pending.length)));
      void other.add('e', 'x');
    };
    wave(1000);
    await Promise.resolve();
    wave(5);
    await new Promise((r) => setImmediate(r));
    wave(300);
    await new Promise((r) => setTimeout(r, 0));
    wave(1);
    const ids = (await Promise.all(pending)) as string[];
    expect(isAscending(ids)).toBe(true);
    const raw = await rawEntries(s.key);
    expect(raw.map((e) => e[0])).toEqual(ids);
    expect(raw.map((e) => e[1][3])).toEqual(ids.map((_, i) => String(i)));
  });

  it('adds still land after the server forgets its scripts (SCRIPT FLUSH), alone and many in one tick', async () => {
    const priv = await RedisServer.start();
    onTestFinished(() => priv.stop());
    const pc = await connect(kind, priv.url);
    onTestFinished(() => pc.close());
    const plain = new Stream(uniqueName('ns'), pc.redis, { maxLen: 0 });
    const withTtl = new Stream(uniqueName('ns'), pc.redis, { maxLen: 0, ttlMs: 60_000 });
    for (let round = 0; round < 2; round++) {
      await pc.cmd('SCRIPT', 'FLUSH');
      const ids = await Promise.all(Array.from({ length: 600 }, (_, i) => plain.add('e', String(i))));
      expect(new Set(ids).size).toBe(600);
      await pc.cmd('SCRIPT', 'FLUSH');
      expect(await withTtl.add('e', 'alone')).toMatch(/^\d+-\d+$/);
    }
    expect(await num(pc, 'XLEN', plain.key)).toBe(1200);
    expect(await num(pc, 'XLEN', withTtl.key)).toBe(2);
  });
});

describe('Stream on a node-redis client with a command timeout', () => {
  // The library sends its commands without node-redis' per-command timeout
  // while the client is connected (that timeout only covers commands waiting
  // to be written, and costs GC pauses); while the client is offline they
  // queue with it, as the user set it up.
  async function setup() {
    const priv = await RedisServer.start();
    onTestFinished(() => priv.stop());
    const client = createClient({
      url: priv.url,
      commandOptions: { timeout: 300 },
      socket: { reconnectStrategy: () => 100 },
    });
    client.on('error', () => {});
    await client.connect();
    onTestFinished(() => client.destroy());
    return { priv, client, stream: new Stream(uniqueName('to'), client, { maxLen: 0 }) };
  }

  it('an add while the client is offline fails after that timeout and is never sent; adds work again once it reconnects', async () => {
    const { priv, client, stream } = await setup();
    expect(await stream.add('e', 'before')).toMatch(/^\d+-\d+$/);
    await priv.kill('SIGKILL');
    await waitFor(() => !client.isReady, { what: 'client offline' });
    const err = await stream.add('e', 'offline').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).cause).toBeInstanceOf(TimeoutError);
    // A fresh, empty server (no persistence): what reaches it after the restart is all there is.
    await priv.restart();
    await waitFor(() => client.isReady, { what: 'client reconnected', timeout: 8000 });
    expect(await stream.add('e', 'after')).toMatch(/^\d+-\d+$/);
    const entries = (await client.sendCommand(['XRANGE', stream.key, '-', '+'])) as Array<[string, string[]]>;
    expect(entries.map((e) => e[1][3])).toEqual(['after']);
  });

  it('an add written to a connected client waits for its reply past that timeout', async () => {
    const { priv, stream } = await setup();
    expect(await stream.add('e', 'warm')).toMatch(/^\d+-\d+$/);
    priv.pause();
    const pending = stream.add('e', 'slow');
    await new Promise((r) => setTimeout(r, 600));
    priv.resume();
    expect(await pending).toMatch(/^\d+-\d+$/);
  });
});
