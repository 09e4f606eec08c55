/**
 * Reader errors (issue 13, defects 5 and 11): entry IDs out of Redis' range
 * are rejected before any Redis call wherever an ID is taken; a Redis error
 * that retrying cannot fix ends the subscriptions with that error instead of
 * being retried forever; a `signal` that is not an AbortSignal is an
 * `InvalidArgumentError`.
 *
 * "No Redis call" is checked on a private server by comparing its command
 * statistics before and after.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  ClosedError,
  InvalidArgumentError,
  PulseError,
  type Reader,
  type ReaderOptions,
  Stream,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** One past the largest value of either part of an entry ID. */
const TOO_BIG = '18446744073709551616';
const MAX = '18446744073709551615';

const outOfRange: string[] = [`${TOO_BIG}-0`, `0-${TOO_BIG}`, TOO_BIG, `${MAX}-${TOO_BIG}`, `99999999999999999999999999-0`];

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a synchronous throw');
}

describe.each(CLIENT_KINDS)('reader errors (%s)', (kind) => {
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

  function newStream(client: TestClient = c): Stream {
    const s = new Stream(uniqueName('re'), client.redis);
    onTestFinished(() => s.destroy());
    return s;
  }

  async function newReader(s: Stream, options: ReaderOptions = {}): Promise<Reader> {
    const r = await s.newReader({ blockMs: 200, ...options });
    onTestFinished(() => r.close());
    return r;
  }

  async function commandCalls(): Promise<Record<string, number>> {
    const info = String(await pc.cmd('INFO', 'commandstats'));
    const out: Record<string, number> = {};
    for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
      if (m[1] !== 'info' && m[1] !== 'ping') out[m[1] as string] = Number(m[2]);
    }
    return out;
  }

  async function expectNoRedisCall(fn: () => Promise<void>): Promise<void> {
    const before = await commandCalls();
    await fn();
    // Anything sent without being awaited would show up by the next round trip.
    await pc.cmd('PING');
    expect(await commandCalls()).toEqual(before);
  }

  // ---- Defect 5: out-of-range IDs ------------------------------------------------------------------

  it.each(outOfRange)('newReader rejects startAt { after: %s } with InvalidArgumentError before any Redis call', async (id) => {
    const s = newStream(pc);
    await expectNoRedisCall(async () => {
      expect(await rejectionOf(s.newReader({ startAt: { after: id } }))).toBeInstanceOf(InvalidArgumentError);
    });
  });

  it.each(outOfRange)('newSink rejects startAt { after: %s } with InvalidArgumentError before any Redis call', async (id) => {
    const s = newStream(pc);
    await expectNoRedisCall(async () => {
      expect(await rejectionOf(s.newSink('sk', { startAt: { after: id } }))).toBeInstanceOf(InvalidArgumentError);
    });
  });

  it.each(outOfRange)('stream.remove(%s) rejects with InvalidArgumentError before any Redis call', async (id) => {
    const s = newStream(pc);
    await expectNoRedisCall(async () => {
      expect(await rejectionOf(s.remove(id))).toBeInstanceOf(InvalidArgumentError);
    });
  });

  it('the largest ID is accepted: a reader after it resolves and reads nothing', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: { after: `${MAX}-${MAX}` } });
    const sub = reader.subscribe();
    await s.add('e', 'x');
    await expect(within(take(sub, 1, 400), 2000, 'take')).rejects.toThrow(/timed out/);
    expect(reader.isClosed()).toBe(false);
  });

  it('addStream with an out-of-range startAt rejects before any Redis call, and the healthy stream goes on', async () => {
    const s = newStream();
    const s2 = newStream();
    const reader = await newReader(s);
    const sub = reader.subscribe();
    const first = await s.add('e', 'before');
    expect((await take(sub, 1))[0]?.id).toBe(first);
    expect(await rejectionOf(reader.addStream(s2, { startAt: { after: `${TOO_BIG}-0` } }))).toBeInstanceOf(InvalidArgumentError);
    const ids = [await s.add('e', 'a'), await s.add('e', 'b')];
    expect((await take(sub, 2, 3000)).map((e) => e.id)).toEqual(ids);
  });

  // ---- Defect 5: an error that retrying cannot fix ---------------------------------------------------

  /** A client of a Redis user of its own, whose rights the test then takes away (ACL SETUSER). */
  async function restrictableClient(): Promise<{ user: string; uc: TestClient }> {
    const user = uniqueName('u').replace(/-/g, '_');
    await c.cmd('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all');
    onTestFinished(async () => {
      await c.cmd('ACL', 'DELUSER', user);
    });
    const url = new URL(sharedUrl());
    url.username = user;
    url.password = 'pw';
    const uc = await connect(kind, url.toString());
    onTestFinished(() => uc.close());
    return { user, uc };
  }

  it('a read refused for good (NOPERM) ends the subscriptions with a PulseError carrying the code and cause, and closes', async () => {
    // A user that may read, then may not: every later XREAD is refused the same way.
    const { user, uc } = await restrictableClient();

    const s = new Stream(uniqueName('re'), uc.redis);
    onTestFinished(() => s.destroy());
    const reader = await newReader(s);
    const sub1 = reader.subscribe();
    const sub2 = reader.subscribe();
    const id = await s.add('e', 'x');
    expect((await take(sub1, 1))[0]?.id).toBe(id);

    await c.cmd('ACL', 'SETUSER', user, '-xread');
    const err = await within(rejectionOf(take(sub1, 1, 60_000)), 5000, 'the subscription to end');
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('NOPERM');
    expect(String((err as PulseError).cause)).toContain('NOPERM');
    // Every subscription ends with it.
    expect(await within(rejectionOf(take(sub2, 2, 60_000)), 5000, 'the second subscription to end')).toBe(err);
    expect(reader.isClosed()).toBe(true);
    const closed = thrownBy(() => reader.subscribe());
    expect(closed).toBeInstanceOf(ClosedError);
    expect((closed as ClosedError).cause).toBe(err);
    // The reader's own connection is released, not left retrying.
    await waitFor(async () => !String(await c.cmd('CLIENT', 'LIST')).includes(`name=pulse:reader:${s.name}`), {
      what: "the reader's connection to close",
    });
  });

  it('a sink whose reads are refused for good (NOPERM) ends its subscriptions with that error', async () => {
    const { user, uc } = await restrictableClient();
    const s = new Stream(uniqueName('re'), uc.redis);
    onTestFinished(() => s.destroy());
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    onTestFinished(() => sink.close());
    const sub = sink.subscribe();
    const id = await s.add('e', 'x');
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(id);
    await ev?.ack();
    await c.cmd('ACL', 'SETUSER', user, '-xreadgroup');
    const err = await within(rejectionOf(take(sub, 1, 60_000)), 5000, 'the subscription to end');
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('NOPERM');
    expect(sink.isClosed()).toBe(true);
  });

  it('a key of another type ends the subscriptions with WRONGTYPE and stops retrying', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'oldest' });
    const sub = reader.subscribe();
    const id = await s.add('e', 'x');
    expect((await take(sub, 1))[0]?.id).toBe(id);
    await c.cmd('DEL', s.key);
    await c.cmd('SET', s.key, 'a string');
    const err = await within(rejectionOf(take(sub, 1, 60_000)), 5000, 'the subscription to end');
    expect((err as PulseError).code).toBe('WRONGTYPE');
    expect(reader.isClosed()).toBe(true);
  });

  // ---- Defect 11: signal -------------------------------------------------------------------------------

  it.each([
    ['a string', 'x'],
    ['a number', 1],
    ['null', null],
    ['a plain object', {}],
    ['an AbortController', new AbortController()],
  ])('subscribe({ signal: %s }) throws InvalidArgumentError', async (_what, signal) => {
    const reader = await newReader(newStream());
    const err = thrownBy(() => reader.subscribe({ signal: signal as unknown as AbortSignal }));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    // Nothing was subscribed: a valid subscription still gets every event.
    const ac = new AbortController();
    const sub = reader.subscribe({ signal: ac.signal });
    ac.abort();
    expect((await sub.next()).done).toBe(true);
  });
});
