/**
 * What a reader's `close()` ends and releases (Go defects 7 and 8), against a
 * real Redis with both clients; connections are counted on a private server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, PulseError, type Reader } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, waitFor } from './support/clients.js';
import { GRACE_MS, ids, readerSuite, settlesWithin } from './support/readerSuite.js';
import { RedisServer } from './support/redisServer.js';

describe.each(CLIENT_KINDS)('Reader close (%s)', (kind) => {
  let c: TestClient;
  /** A private server, for counting commands and connections. */
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
  const { newStream, newReader, xreadCalls, connectedClients } = readerSuite(
    () => c,
    () => pc,
  );

  it('close ends subscriptions: a pending next() resolves done', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const sub = reader.subscribe();
    const sub2 = reader.subscribe();
    const pending = sub.next();
    await reader.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect((await sub2.next()).done).toBe(true);
    expect(sub.ended).toBe(true);
  });

  it('close ends a for await loop', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const seen: string[] = [];
    const loop = (async () => {
      for await (const ev of reader) seen.push(ev.id);
    })();
    const id = await s.add('e', 'x');
    await waitFor(() => seen.length === 1);
    await reader.close();
    await loop;
    expect(seen).toEqual([id]);
  });

  it('close twice, and concurrently, is safe and does not hang, even during a long block (Go defect 7)', async () => {
    const s = newStream();
    const reader = await newReader(s, { blockMs: 60_000 });
    const sub = reader.subscribe();
    const id = await s.add('e', 'x');
    expect(ids(await take(sub, 1))).toEqual([id]); // now blocked for up to a minute
    const closing = Promise.all([reader.close(), reader.close(), reader.close()]);
    expect(await settlesWithin(closing, 10_000)).toBe(true);
    await closing;
    expect(await settlesWithin(reader.close(), 5000)).toBe(true);
    expect(reader.isClosed()).toBe(true);
  });

  it('close of a reader that never subscribed resolves', async () => {
    const s = newStream();
    const reader = await s.newReader({ blockMs: 60_000 });
    expect(await settlesWithin(reader.close(), 5000)).toBe(true);
    expect(reader.isClosed()).toBe(true);
  });

  it('after close: subscribe and addStream throw ClosedError, removeStream resolves (Go defect 7)', async () => {
    const s = newStream();
    const s2 = newStream();
    const reader = await newReader(s);
    await reader.addStream(s2);
    expect(reader.isClosed()).toBe(false);
    await reader.close();
    expect(reader.isClosed()).toBe(true);
    expect(() => reader.subscribe()).toThrow(ClosedError);
    let thrown: unknown;
    try {
      reader.subscribe();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PulseError);
    expect((thrown as Error).name).toBe('ClosedError');
    await expect(reader.addStream(newStream())).rejects.toBeInstanceOf(ClosedError);
    await expect(reader.addStream(s2)).rejects.toBeInstanceOf(ClosedError);
    await expect(reader.removeStream(s2)).resolves.toBeUndefined();
    await expect(reader.removeStream(s)).resolves.toBeUndefined();
    await expect(
      (async () => {
        for await (const _ of reader) break;
      })(),
    ).rejects.toBeInstanceOf(ClosedError);
  });

  it('await using closes the reader', async () => {
    const s = newStream();
    let outer: Reader | undefined;
    {
      await using reader = await s.newReader({ blockMs: 200 });
      outer = reader;
      const sub = reader.subscribe();
      const id = await s.add('e', 'x');
      expect(ids(await take(sub, 1))).toEqual([id]);
      expect(reader.isClosed()).toBe(false);
    }
    expect(outer.isClosed()).toBe(true);
  });

  it('close releases the connections the reader opened', async () => {
    const s = newStream(undefined, pc);
    // Only the test's own client is connected once earlier tests' connections are gone.
    await waitFor(async () => (await connectedClients()) === 1, { what: 'earlier connections to close' });
    const baseline = 1;
    const reader = await s.newReader({ blockMs: 100 });
    const sub = reader.subscribe();
    const id = await s.add('e', 'x');
    expect(ids(await take(sub, 1))).toEqual([id]);
    expect(await connectedClients()).toBeGreaterThan(baseline);
    await reader.close();
    await waitFor(async () => (await connectedClients()) <= baseline, { what: 'reader connections to close' });
    // The user's client is never closed by the library.
    expect(await pc.cmd('PING')).toBe('PONG');
  });

  it('reading starts with the first subscribe', async () => {
    const s = newStream(undefined, pc);
    const start = await xreadCalls();
    const reader = await newReader(s, { blockMs: 50 });
    await s.add('e', 'x');
    await new Promise((r) => setTimeout(r, GRACE_MS)); // watching for reads that must not happen
    expect(await xreadCalls()).toBe(start);
    const sub = reader.subscribe();
    expect((await take(sub, 1))[0]?.text()).toBe('x');
  });
});
