/**
 * The library names its own connections after the sink or stream
 * (`pulse:sink:<name>:control`...). Redis only accepts client names made of
 * `!`..`~`: names with other characters must be escaped, or node-redis
 * retries its handshake forever and `newSink` never settles. A connection
 * that cannot be set up at all must fail `newSink`/`newReader` with a
 * `PulseError` in bounded time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { connectionName, OPEN_TIMEOUT_MS } from '../packages/pulse-streaming/src/internal/connection.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const NAMES = ['billing-é', '日本', 'rocket-🚀', `tab\tand-${'ü'.repeat(300)}`];

describe('connectionName', () => {
  it('keeps printable ASCII, escapes the rest, and caps the length', () => {
    expect(connectionName('pulse:sink:orders:control')).toBe('pulse:sink:orders:control');
    expect(connectionName('pulse:sink:billing-é:read')).toBe('pulse:sink:billing-%C3%A9:read');
    // '%' itself is escaped, so two different names never share a connection name (below the cap).
    expect(connectionName('a%C3%A9')).toBe('a%25C3%25A9');
    for (const n of NAMES) {
      const name = connectionName(`pulse:sink:${n}:control`);
      expect(name).toMatch(/^[!-~]+$/);
      expect(name.length).toBeLessThanOrEqual(128);
    }
    // Long names stay distinct after the cap.
    expect(connectionName(`x${'é'.repeat(200)}a`)).not.toBe(connectionName(`x${'é'.repeat(200)}b`));
  });
});

describe.each(CLIENT_KINDS)('connection names (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it.each(NAMES)('a sink and a reader named %j open, consume and close', async (n) => {
    const name = `${uniqueName('cn')}-${n}`;
    const stream = new Stream(name, c.redis, { maxLen: 100 });
    const sinkName = n;
    const sink = await within(stream.newSink(sinkName), 5000, 'newSink');
    const reader = await within(stream.newReader({ startAt: 'oldest' }), 5000, 'newReader');
    try {
      const sub = sink.subscribe();
      const rsub = reader.subscribe();
      await stream.add('e', 'payload');
      const [ev] = await take(sub, 1);
      const [rev] = await take(rsub, 1);
      expect(ev?.text()).toBe('payload');
      expect(rev?.text()).toBe('payload');
      await ev?.ack();
      expect(sink.counters.acked).toBe(1);
      // The connections carry the escaped name (ioredis used to drop a rejected name silently).
      const control = `name=${connectionName(`pulse:sink:${sinkName}:control`)} `;
      await waitFor(async () => String(await c.cmd('CLIENT', 'LIST')).includes(control), { what: control });
    } finally {
      await within(sink.close(), 5000, 'sink.close');
      await within(reader.close(), 5000, 'reader.close');
      await stream.destroy();
    }
  });
});

describe.each(CLIENT_KINDS)('a connection that cannot be set up (%s)', (kind) => {
  let priv: RedisServer;
  let admin: TestClient;
  beforeAll(async () => {
    priv = await RedisServer.start();
    admin = await connect(kind, priv.url);
  });
  afterAll(async () => {
    await admin.close();
    await priv.stop();
  });

  it('fails newSink and newReader with a PulseError that keeps the cause, in bounded time', async () => {
    const user = await connect(kind, priv.url);
    try {
      const stream = new Stream(uniqueName('cn-fail'), user.redis);
      await stream.add('e', 'x');
      // The server takes no more connections: the user's client (connected)
      // works, the library's own connections cannot be set up.
      const clients = String(await admin.cmd('CLIENT', 'LIST'))
        .trim()
        .split('\n').length;
      await admin.cmd('CONFIG', 'SET', 'maxclients', clients);
      try {
        for (const open of [() => stream.newSink('s'), () => stream.newReader()]) {
          const err = await within(
            open().then(
              async (s) => {
                await s.close();
                return new Error('expected a rejection');
              },
              (e: unknown) => e,
            ),
            OPEN_TIMEOUT_MS + 2000,
            'opening with a connection that cannot be set up',
          );
          expect(err).toBeInstanceOf(PulseError);
          expect((err as PulseError).cause).toBeDefined();
        }
        // The failed newSink did not stay registered: its group (which it created) is gone.
        const groups = (await user.cmd('XINFO', 'GROUPS', stream.key)) as unknown[];
        expect(groups).toHaveLength(0);
      } finally {
        await admin.cmd('CONFIG', 'SET', 'maxclients', 10000);
      }
    } finally {
      await user.close();
    }
  });
});
