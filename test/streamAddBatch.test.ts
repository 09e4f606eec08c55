/**
 * Adds of one tick go in one script call per stream, and what that keeps:
 * order, options per stream, bytes; against a real Redis with both clients.
 */
import { Redis } from 'ioredis';
import { createClient, TimeoutError } from 'redis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { isAscending, num, type RawEntries, streamSuite } from './support/streamSuite.js';

describe.each(CLIENT_KINDS)('Stream adds of one tick (%s)', (kind) => {
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
  const { newStream, rawEntries, rawBytes } = streamSuite(
    () => c,
    () => bin,
  );

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
