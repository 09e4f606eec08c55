/**
 * Bad input: invalid names, options and clients are rejected with
 * `InvalidArgumentError` before any Redis call; keys of the wrong type give a
 * `PulseError` with the Redis code and cause; big and non-UTF-8 payloads pass.
 *
 * "No Redis call" is checked on a private server by comparing its command
 * statistics before and after.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  ClosedError,
  InvalidArgumentError,
  PulseError,
  type ReaderOptions,
  Stream,
  type StreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** Calls `fn` and returns what it threw synchronously (failing if it did not throw). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a synchronous throw');
}

function expectInvalidArgument(err: unknown): void {
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect(err).toBeInstanceOf(PulseError);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).name).toBe('InvalidArgumentError');
  expect((err as Error).message.length).toBeGreaterThan(0);
}

/** Rejection reason of a promise (failing if it resolves). Also fails when the call throws synchronously. */
async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe.each(CLIENT_KINDS)('bad input (%s)', (kind) => {
  let c: TestClient;
  /** A private server whose command statistics only this file's tests change. */
  let priv: RedisServer;
  let pc: TestClient;

  beforeAll(async () => {
    c = await connect(kind);
    priv = await RedisServer.start();
    pc = await connect(kind, priv.url);
  });
  afterAll(async () => {
    await c.close();
    await pc.close();
    await priv.stop();
  });

  function newStream(options?: StreamOptions, client: TestClient = c): Stream {
    const s = new Stream(uniqueName('bi'), client.redis, options);
    onTestFinished(() => s.destroy());
    return s;
  }

  /** Calls per command on the private server, leaving out the INFO calls that read them. */
  async function commandCalls(): Promise<Record<string, number>> {
    const info = String(await pc.cmd('INFO', 'commandstats'));
    const out: Record<string, number> = {};
    for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
      if (m[1] !== 'info') out[m[1] as string] = Number(m[2]);
    }
    return out;
  }

  /** Runs `fn` and checks that it sent no command to the private server. */
  async function expectNoRedisCall(fn: () => Promise<void>): Promise<void> {
    const before = await commandCalls();
    const clientsBefore = String(await pc.cmd('INFO', 'clients')).match(/connected_clients:(\d+)/)?.[1];
    await fn();
    // Anything sent without being awaited would show up by the next round trip.
    await pc.cmd('PING');
    const after = await commandCalls();
    delete after.ping;
    delete before.ping;
    expect(after).toEqual(before);
    expect(String(await pc.cmd('INFO', 'clients')).match(/connected_clients:(\d+)/)?.[1]).toBe(clientsBefore);
  }

  // ---- Stream names and options ----------------------------------------------------------------

  const badNames: Array<[string, string]> = [
    ['empty', ''],
    ['513 characters', 'x'.repeat(513)],
    ['a space', 'a b'],
    ['a NUL', 'a\0b'],
    ['*', 'a*'],
    ['?', 'a?'],
    ['[', 'a['],
    [']', 'a]'],
    ['only a space', ' '],
    ['a trailing space', 'orders '],
  ];

  it.each(badNames)('new Stream throws InvalidArgumentError synchronously for a name with %s', async (_what, name) => {
    await expectNoRedisCall(async () => {
      expectInvalidArgument(thrownBy(() => new Stream(name, pc.redis)));
    });
    expect(Number(await pc.cmd('EXISTS', `pulse:stream:${name}`))).toBe(0);
  });

  it('accepts a name of exactly 512 characters and other punctuation', async () => {
    const base = uniqueName('bi');
    const long = base + 'x'.repeat(512 - base.length);
    expect(long).toHaveLength(512);
    for (const name of [long, `${uniqueName('bi')}:a/b.c-d_e{f}~!@#$%^&()+=`, `${uniqueName('bi')}-ünï-名前-🎉`]) {
      const s = new Stream(name, c.redis);
      onTestFinished(() => s.destroy());
      expect(s.name).toBe(name);
      expect(await s.add('e', 'x')).toMatch(/^\d+-\d+$/);
      expect(Number(await c.cmd('XLEN', `pulse:stream:${name}`))).toBe(1);
    }
  });

  it.each([
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
    ['an object', { name: 'x' }],
    ['a String object', new String('abc')],
  ])('new Stream throws InvalidArgumentError for a name that is %s', async (_what, name) => {
    await expectNoRedisCall(async () => {
      expectInvalidArgument(thrownBy(() => new Stream(name as unknown as string, pc.redis)));
    });
  });

  it.each([
    ['negative maxLen', { maxLen: -1 }],
    ['very negative maxLen', { maxLen: -1000 }],
    ['negative ttlMs', { ttlMs: -1 }],
    ['negative ttlMs with sliding TTL', { ttlMs: -5, slidingTtl: true }],
  ])('new Stream throws InvalidArgumentError synchronously for %s', async (_what, options) => {
    await expectNoRedisCall(async () => {
      expectInvalidArgument(thrownBy(() => new Stream(uniqueName('bi'), pc.redis, options as StreamOptions)));
    });
  });

  it.each([
    ['an empty object', {}],
    ['null', null],
    ['undefined', undefined],
    ['a URL string', 'redis://127.0.0.1:6379'],
    ['a number', 6379],
    ['a Map', new Map()],
    ['an object with only a call method', { call: () => Promise.resolve('OK') }],
    // Shaped like a client in the two methods the check looked for, not in the others the library
    // calls on it (outside trial: a TypeError "user.on is not a function" from deep inside).
    ['an object with callBuffer and duplicate only', { callBuffer() {}, duplicate() {} }],
    ['an object with callBuffer, duplicate and on, without pipeline', { callBuffer() {}, duplicate() {}, on() {} }],
    ['an object with sendCommand and duplicate only', { sendCommand() {}, duplicate() {} }],
  ])('new Stream throws InvalidArgumentError when the client is %s', (_what, client) => {
    expectInvalidArgument(thrownBy(() => new Stream(uniqueName('bi'), client as never)));
  });

  // ---- Reader options --------------------------------------------------------------------------------

  const badReaderOptions: Array<[string, ReaderOptions]> = [
    ['blockMs 0', { blockMs: 0 }],
    ['blockMs -1', { blockMs: -1 }],
    ['blockMs 1.5', { blockMs: 1.5 }],
    ['maxPolled 0', { maxPolled: 0 }],
    ['maxPolled -3', { maxPolled: -3 }],
    ['bufferSize 0', { bufferSize: 0 }],
    ['bufferSize -1', { bufferSize: -1 }],
    ['a numeric topic', { topic: 42 as unknown as string }],
    ['an object topic', { topic: {} as unknown as string }],
    ['a numeric startAt', { startAt: 42 as unknown as 'oldest' }],
    ['an unknown startAt string', { startAt: 'latest' as unknown as 'oldest' }],
    ['startAt { after: "abc" }', { startAt: { after: 'abc' } }],
    ['startAt { after: 12 }', { startAt: { after: 12 as unknown as string } }],
    ['startAt null', { startAt: null as unknown as 'oldest' }],
    ['startAt an invalid Date', { startAt: new Date('not a date') }],
    ['a filter that is not a function', { filter: 'x' as unknown as () => boolean }],
  ];

  it.each(badReaderOptions)('newReader rejects %s with InvalidArgumentError and creates nothing', async (_what, options) => {
    const s = newStream(undefined, pc);
    await expectNoRedisCall(async () => {
      expectInvalidArgument(await rejectionOf(s.newReader(options)));
    });
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
  });

  it.each(badReaderOptions)('newSink rejects %s with InvalidArgumentError and creates nothing', async (_what, options) => {
    const s = newStream(undefined, pc);
    await expectNoRedisCall(async () => {
      expectInvalidArgument(await rejectionOf(s.newSink('sk', options)));
    });
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
    expect(Number(await pc.cmd('EXISTS', `{${s.key}}:sinks`))).toBe(0);
  });

  it('addStream rejects a bad startAt with InvalidArgumentError', async () => {
    const s = newStream();
    const s2 = newStream();
    const reader = await s.newReader({ blockMs: 200 });
    onTestFinished(() => reader.close());
    for (const startAt of [42, { after: 'abc' }, new Date('x'), 'latest']) {
      expectInvalidArgument(await rejectionOf(reader.addStream(s2, { startAt: startAt as 'oldest' })));
    }
    // The reader still works and did not start reading s2.
    const sub = reader.subscribe();
    await s2.add('e', 'not read');
    const id = await s.add('e', 'read');
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(id);
  });

  // ---- Sink names --------------------------------------------------------------------------------------

  it.each([...badNames, ['a number', 42 as unknown as string] as [string, string]])(
    'newSink rejects a sink name with %s with InvalidArgumentError and creates nothing',
    async (_what, name) => {
      const s = newStream(undefined, pc);
      await expectNoRedisCall(async () => {
        expectInvalidArgument(await rejectionOf(s.newSink(name, { blockMs: 200 })));
      });
      expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
      expect(Number(await pc.cmd('EXISTS', `{${s.key}}:sinks`))).toBe(0);
    },
  );

  // ---- add arguments ------------------------------------------------------------------------------------

  it.each([
    ['a number payload', 'e', 42],
    ['an object payload', 'e', { a: 1 }],
    ['a null payload', 'e', null],
    ['an array payload', 'e', [1, 2, 3]],
    ['a numeric event name', 42, 'x'],
  ])('add rejects %s with InvalidArgumentError and adds nothing', async (_what, name, payload) => {
    const s = newStream(undefined, pc);
    await expectNoRedisCall(async () => {
      expectInvalidArgument(await rejectionOf(s.add(name as string, payload as string)));
    });
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
  });

  it.each([
    ['a string for options (a topic meant)', 'e', 'x', 'eu'],
    ['null options', 'e', 'x', null],
  ])('add rejects %s with InvalidArgumentError and adds nothing', async (_what, name, payload, options) => {
    const s = newStream(undefined, pc);
    await expectNoRedisCall(async () => {
      expectInvalidArgument(await rejectionOf(s.add(name, payload, options as never)));
    });
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
  });

  it.each([
    ['an empty object', {}],
    ['console (no child)', console],
    ['a string', 'pino'],
  ])('new Stream rejects a logger that is %s with InvalidArgumentError', async (_what, logger) => {
    await expectNoRedisCall(async () => {
      expectInvalidArgument(thrownBy(() => new Stream('s', pc.redis, { logger: logger as never })));
    });
  });

  it('new Stream rejects slidingTtl without ttlMs with InvalidArgumentError', () => {
    expectInvalidArgument(thrownBy(() => new Stream('s', pc.redis, { slidingTtl: true })));
  });

  it('a sink cannot read its own dead-letter stream: newSink and addStream reject with InvalidArgumentError', async () => {
    const s = newStream(undefined, pc);
    await expectNoRedisCall(async () => {
      expectInvalidArgument(await rejectionOf(s.newSink('sink', { deadLetterStream: s.name, blockMs: 200 })));
    });
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
    const dead = newStream(undefined, pc);
    const sink = await s.newSink('sink', { deadLetterStream: dead.name, blockMs: 200 });
    onTestFinished(() => sink.close());
    // (A live sink's own background work sends commands: only the key is checked here.)
    expectInvalidArgument(await rejectionOf(sink.addStream(dead)));
    expect(Number(await pc.cmd('EXISTS', dead.key))).toBe(0);
  });

  it('add on a client that was closed rejects with ClosedError saying it was not stored, not "outcome unknown"', async () => {
    const closed = await connect(kind, priv.url);
    if (kind === 'ioredis') {
      const redis = closed.redis as Redis;
      await redis.quit();
      // quit() resolves before the socket closes (status 'end').
      await waitFor(() => redis.status === 'end', { what: 'ioredis client ended' });
    } else await closed.close();
    const s = new Stream(uniqueName('bi'), closed.redis);
    const err = await rejectionOf(s.add('e', 'x'));
    expect(err).toBeInstanceOf(ClosedError);
    expect((err as Error).message).toMatch(/not stored/);
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
  });

  it('add rejects a non-string topic with InvalidArgumentError and adds nothing', async () => {
    const s = newStream(undefined, pc);
    await expectNoRedisCall(async () => {
      expectInvalidArgument(await rejectionOf(s.add('e', 'x', { topic: 42 as unknown as string })));
    });
    expect(Number(await pc.cmd('EXISTS', s.key))).toBe(0);
  });

  it('remove rejects IDs that are not entry IDs with InvalidArgumentError', async () => {
    const s = newStream(undefined, pc);
    await s.add('e', 'x');
    await expectNoRedisCall(async () => {
      for (const id of ['abc', '', '1-2-3', '-1']) {
        expectInvalidArgument(await rejectionOf(s.remove(id)));
      }
    });
    expect(Number(await pc.cmd('XLEN', s.key))).toBe(1);
  });

  // ---- A key of another type ------------------------------------------------------------------------------

  it('WRONGTYPE: add rejects with a PulseError carrying the code and the cause; the key is unchanged', async () => {
    for (const options of [{}, { ttlMs: 60_000 }, { ttlMs: 60_000, slidingTtl: true }, { maxLen: 0 }]) {
      const s = newStream(options);
      await c.cmd('SET', s.key, 'plain string');
      const err = await rejectionOf(s.add('e', 'x'));
      expect(err).toBeInstanceOf(PulseError);
      expect(err).not.toBeInstanceOf(InvalidArgumentError);
      expect((err as PulseError).code).toBe('WRONGTYPE');
      expect((err as PulseError).cause).toBeInstanceOf(Error);
      expect(String((err as PulseError).cause)).toContain('WRONGTYPE');
      expect(await c.cmd('GET', s.key)).toBe('plain string');
      expect(await c.cmd('TYPE', s.key)).toBe('string');
      expect(Number(await c.cmd('PTTL', s.key))).toBe(-1); // no TTL set on somebody else's key
    }
  });

  it('WRONGTYPE: onlyIfStreamExists add rejects too', async () => {
    const s = newStream();
    await c.cmd('SET', s.key, 'plain string');
    const err = await rejectionOf(s.add('e', 'x', { onlyIfStreamExists: true }));
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('WRONGTYPE');
    expect(await c.cmd('GET', s.key)).toBe('plain string');
  });

  it('WRONGTYPE: newReader rejects with a PulseError', async () => {
    const s = newStream();
    await c.cmd('SET', s.key, 'plain string');
    const err = await rejectionOf(s.newReader({ blockMs: 200 }));
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('WRONGTYPE');
    expect((err as PulseError).cause).toBeDefined();
    expect(await c.cmd('GET', s.key)).toBe('plain string');
  });

  it('WRONGTYPE: a reader that does not look at the key first ends its subscriptions with a PulseError', async () => {
    const s = newStream();
    await c.cmd('SET', s.key, 'plain string');
    const reader = await s.newReader({ blockMs: 200, startAt: 'oldest' });
    onTestFinished(() => reader.close());
    const sub = reader.subscribe();
    const err = await rejectionOf(take(sub, 1, 10_000));
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('WRONGTYPE');
    expect(await c.cmd('GET', s.key)).toBe('plain string');
  });

  it('WRONGTYPE: newSink rejects with a PulseError and leaves the key alone', async () => {
    const s = newStream();
    await c.cmd('SET', s.key, 'plain string');
    const err = await rejectionOf(s.newSink('sk', { blockMs: 200 }));
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('WRONGTYPE');
    expect(await c.cmd('GET', s.key)).toBe('plain string');
  });

  // ---- Payloads ------------------------------------------------------------------------------------------

  it('a 10 MB payload round-trips through a reader and a sink', async () => {
    const s = newStream();
    const reader = await s.newReader({ blockMs: 200 });
    onTestFinished(() => reader.close());
    const sink = await s.newSink('big', { blockMs: 200 });
    onTestFinished(() => sink.close());
    const rsub = reader.subscribe();
    const ssub = sink.subscribe();
    const payload = randomBytes(10 * 1024 * 1024);
    const id = await s.add('big', payload);
    const [r] = await take(rsub, 1, 20_000);
    const [e] = await take(ssub, 1, 20_000);
    expect(r?.id).toBe(id);
    expect(e?.id).toBe(id);
    expect(r?.payload.length).toBe(payload.length);
    expect(r?.payload.equals(payload)).toBe(true);
    expect(e?.payload.equals(payload)).toBe(true);
    await e?.ack();
    const pending = (await c.cmd('XPENDING', s.key, 'big')) as unknown[];
    expect(Number(pending[0])).toBe(0);
  });

  it('non-UTF-8 bytes round-trip through a reader and a sink', async () => {
    const s = newStream();
    const reader = await s.newReader({ blockMs: 200 });
    onTestFinished(() => reader.close());
    const sink = await s.newSink('bytes', { blockMs: 200 });
    onTestFinished(() => sink.close());
    const rsub = reader.subscribe();
    const ssub = sink.subscribe();
    const payloads = [
      Buffer.from([0xff, 0xfe, 0xfd]),
      Buffer.from([0xc3, 0x28]), // invalid 2-byte sequence
      Buffer.from([0xed, 0xa0, 0x80]), // a lone surrogate, encoded
      Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), // 5-byte form
      Buffer.from([0x00, 0x00, 0x00]),
      Buffer.from([0xef, 0xbb, 0xbf, 0x41]), // a BOM
      Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i)),
    ];
    const ids: string[] = [];
    for (const p of payloads) ids.push((await s.add('bytes', p)) as string);
    const revs = await take(rsub, payloads.length);
    const sevs = await take(ssub, payloads.length);
    expect(revs.map((e) => e.id)).toEqual(ids);
    expect(sevs.map((e) => e.id)).toEqual(ids);
    payloads.forEach((p, i) => {
      expect(revs[i]?.payload.equals(p), `reader payload ${i}`).toBe(true);
      expect(sevs[i]?.payload.equals(p), `sink payload ${i}`).toBe(true);
    });
    await sink.ack(...sevs);
  });
});
