/**
 * Stream payloads round-trip bit for bit, the wire format shared with Go
 * Pulse, and concurrent adds, against a real Redis with both clients.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient } from './support/clients.js';
import { isAscending, num, streamSuite } from './support/streamSuite.js';

describe.each(CLIENT_KINDS)('Stream payloads (%s)', (kind) => {
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
  const { newStream, rawEntries, rawBytes, readAll } = streamSuite(
    () => c,
    () => bin,
  );

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
});
