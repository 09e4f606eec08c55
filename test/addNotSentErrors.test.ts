/**
 * An add rejects with "outcome unknown" (code ADD_OUTCOME_UNKNOWN) only when
 * its command may have reached Redis; one the client never sent says it was
 * not stored: a ClosedError when the client is closed, else code
 * ADD_NOT_SENT with the client's reason. Outside review A (finding 2) found
 * adds never sent reported "outcome unknown ... may or may not be stored":
 * node-redis adds issued just before close() or destroy() (they reach the
 * client on the batcher's next tick, after it), node-redis adds timed out in
 * its queue while offline, ioredis adds flushed from the offline queue of the
 * connection adds use (the client disconnected before it opened, or Redis
 * refusing it: max clients, whose reply was hidden behind "Reached the max
 * retries per request limit"). And an add Redis may have received still says
 * "outcome unknown".
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { ClosedError, PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

type Ctx = { onTestFinished(fn: () => unknown): void };

/** A private server (these tests close, kill and limit it), stopped at the end of the test. */
async function server(ctx: Ctx): Promise<RedisServer> {
  const srv = await RedisServer.start();
  ctx.onTestFinished(() => srv.stop());
  return srv;
}

/** An ioredis client on `srv` that retries every 100 ms. */
async function ioClient(srv: RedisServer, ctx: Ctx) {
  const r = new Redis(srv.url, { lazyConnect: true, retryStrategy: () => 100 });
  r.on('error', () => {});
  await r.connect();
  ctx.onTestFinished(() => r.disconnect());
  return r;
}

/** A node-redis client on `srv` that retries every 100 ms, with command timeout `timeout`. */
async function nodeClient(srv: RedisServer, ctx: Ctx, timeout?: number) {
  const r = createClient({ url: srv.url, socket: { reconnectStrategy: () => 100 }, commandOptions: { timeout } });
  r.on('error', () => {});
  await r.connect();
  ctx.onTestFinished(() => (r.isOpen ? r.destroy() : undefined));
  return r;
}

/** The payloads stored in `key`. */
async function stored(srv: RedisServer, key: string): Promise<Set<string>> {
  const r = new Redis(srv.url);
  try {
    const raw = (await r.xrange(key, '-', '+')) as Array<[string, string[]]>;
    return new Set(raw.map(([, f]) => String(f[3])));
  } finally {
    r.disconnect();
  }
}

/** What each outcome claims that the stream contradicts, and the errors' kinds. */
function check(outcomes: PromiseSettledResult<string>[], inStream: Set<string>) {
  const lies: string[] = [];
  const kinds = new Set<string>();
  outcomes.forEach((o, i) => {
    const p = String(i);
    if (o.status === 'fulfilled') {
      kinds.add('resolved');
      if (!inStream.has(p)) lies.push(`${p} resolved, not stored`);
      return;
    }
    const err = o.reason as PulseError;
    const unknown = err.code === 'ADD_OUTCOME_UNKNOWN';
    kinds.add(unknown ? 'ADD_OUTCOME_UNKNOWN' : `${err.name} ${err.code ?? ''}`.trim());
    if (unknown !== /outcome unknown/.test(err.message)) lies.push(`${p}: code ${err.code}, "${err.message}"`);
    if (!unknown && !/not stored/.test(err.message)) lies.push(`${p}: "${err.message}" does not say not stored`);
    if (!unknown && inStream.has(p)) lies.push(`${p}: "${err.message}" but stored`);
  });
  return { lies, kinds: [...kinds].sort() };
}

describe.concurrent('adds never sent say they were not stored', () => {
  it('node-redis: adds issued (not awaited) just before close() reject with ClosedError, not stored', async (ctx) => {
    const srv = await server(ctx);
    const redis = await nodeClient(srv, ctx);
    const s = new Stream(uniqueName('closeIssued'), redis, { maxLen: 0 });
    await s.add('warm', 'w');
    // They wait for the batcher's next tick: node-redis refuses them once close() ran.
    const settled = Promise.allSettled(Array.from({ length: 200 }, (_, i) => s.add('k', String(i))));
    await redis.close();
    const outcomes = await settled;
    expect(check(outcomes, await stored(srv, s.key))).toEqual({ lies: [], kinds: ['ClosedError'] });
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(ClosedError);
  });

  it('node-redis destroy() right after the adds: ClosedError, not stored', async (ctx) => {
    const srv = await server(ctx);
    const redis = await nodeClient(srv, ctx);
    const s = new Stream(uniqueName('destroyIssued'), redis, { maxLen: 0 });
    await s.add('warm', 'w');
    const settled = Promise.allSettled(Array.from({ length: 200 }, (_, i) => s.add('k', String(i))));
    redis.destroy();
    expect(check(await settled, await stored(srv, s.key))).toEqual({ lies: [], kinds: ['ClosedError'] });
  });

  it('ioredis disconnect() before the connection adds use opened: ClosedError, not stored', async (ctx) => {
    const srv = await server(ctx);
    const redis = await ioClient(srv, ctx);
    const s = new Stream(uniqueName('disconnectCold'), redis, { maxLen: 0 });
    // Frozen, Redis cannot answer the new connection's handshake: it cannot be ready before the
    // disconnect, whatever the machine's load.
    srv.pause();
    ctx.onTestFinished(() => srv.resume());
    const settled = Promise.allSettled(Array.from({ length: 200 }, (_, i) => s.add('k', String(i))));
    // The batcher's tick hands them to the publishing connection, which is still connecting.
    await new Promise((r) => setImmediate(r));
    redis.disconnect();
    await settled;
    srv.resume();
    expect(check(await settled, await stored(srv, s.key))).toEqual({ lies: [], kinds: ['ClosedError'] });
  });

  it("ioredis: the connection adds use cannot open (max clients): ADD_NOT_SENT, with the connection's error", async (ctx) => {
    const srv = await server(ctx);
    const redis = await ioClient(srv, ctx);
    const s = new Stream(uniqueName('maxClients'), redis, { maxLen: 0 });
    const clients = String(await redis.call('CLIENT', 'LIST'))
      .trim()
      .split('\n').length;
    await redis.call('CONFIG', 'SET', 'maxclients', String(clients));
    const err = (await within(
      s.add('k', 'v').catch((e: unknown) => e),
      10_000,
      'the add',
    )) as PulseError;
    await redis.call('CONFIG', 'SET', 'maxclients', '10000');
    expect(err).toBeInstanceOf(PulseError);
    expect({ code: err.code, xlen: await redis.xlen(s.key) }).toEqual({ code: 'ADD_NOT_SENT', xlen: 0 });
    // Redis refuses the connection and closes it: ioredis sees the broken pipe, or only the close.
    expect(err.message).toMatch(
      /not stored \(never sent to Redis\): the connection adds use (failed: .*(EPIPE|ECONNRESET|max number of clients)|closed before it was ready)/,
    );
  });
});

describe.concurrent.each(CLIENT_KINDS)('adds and a lost connection (%s)', (kind) => {
  it('Redis down: an add the client queues and gives up on is ADD_NOT_SENT, not stored', async (ctx) => {
    const srv = await server(ctx);
    // node-redis queues commands while offline, for its command timeout; ioredis' connection for
    // adds queues them until its next failed attempt to connect.
    const node = kind === 'node-redis' ? await nodeClient(srv, ctx, 300) : undefined;
    const s = new Stream(uniqueName('offline'), node ?? (await ioClient(srv, ctx)), { maxLen: 0 });
    await s.add('warm', 'w');
    await srv.kill('SIGKILL');
    if (node) await waitFor(() => !node.isReady, { what: 'node-redis offline' });
    else {
      // The connection adds use may not have seen its socket close yet: an add written to it
      // would rightly be "outcome unknown". Once one failed, it knows.
      await s.add('k', 'probe').catch(() => undefined);
    }
    const err = (await within(
      s.add('k', 'offline').catch((e: unknown) => e),
      10_000,
      'the add',
    )) as PulseError;
    expect(err).toBeInstanceOf(PulseError);
    expect(err.code).toBe('ADD_NOT_SENT');
    // The reason: node-redis' command timeout, or the connection ioredis could not open again.
    expect(err.message).toMatch(
      /not stored \(never sent to Redis\): (TimeoutError|the connection adds use (failed: .*ECONNREFUSED|closed before it was ready))/,
    );
    // ioredis' advice to look at "maxRetriesPerRequest" is about the library's own connection, not the user's.
    expect(err.message).not.toMatch(/maxRetriesPerRequest|max retries per request/i);
  });

  it('the connection lost after the add was written: ADD_OUTCOME_UNKNOWN', async (ctx) => {
    const srv = await server(ctx);
    const redis = kind === 'node-redis' ? await nodeClient(srv, ctx) : await ioClient(srv, ctx);
    const s = new Stream(uniqueName('written'), redis, { maxLen: 0 });
    await s.add('warm', 'w');
    const admin = new Redis(srv.url);
    ctx.onTestFinished(() => admin.disconnect());
    // Written, not run: writes wait while the server is paused; then its connection is killed.
    await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE');
    const pending = s.add('k', 'written').catch((e: unknown) => e);
    await waitFor(async () => /cmd=(xadd|eval)/.test(String(await admin.call('CLIENT', 'LIST'))), {
      what: 'the add blocked on the server',
    });
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    const err = (await within(pending, 10_000, 'the add')) as PulseError;
    await admin.call('CLIENT', 'UNPAUSE');
    expect(err).toBeInstanceOf(PulseError);
    expect(err.code).toBe('ADD_OUTCOME_UNKNOWN');
    expect(err.message).toMatch(/outcome unknown/);
  });
});
