/**
 * The package accepts node-redis from version 5 (peerDependencies `redis >=5`),
 * and the suite runs node-redis 6: these run the basics with node-redis 5
 * (the `redis5` alias, 5.12), so that the range claimed is a range tested:
 * bytes, headers and dedup through a sink and a reader; a sink across a Redis
 * restart; `close()` and `add` while Redis is down.
 */
import { createClient } from 'redis5';
import { describe, expect, it, type TestContext } from 'vitest';
import { PulseError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

async function setup(ctx: TestContext, args?: string[], commandOptions?: { timeout: number }) {
  const server = await RedisServer.start(args ? { args } : undefined);
  ctx.onTestFinished(() => server.stop());
  const socket = { reconnectStrategy: (n: number) => Math.min(n * 50, 500) };
  const redis = createClient({ url: server.url, socket, ...(commandOptions && { commandOptions }) });
  redis.on('error', () => {});
  await redis.connect();
  ctx.onTestFinished(() => redis.destroy());
  return { server, redis, s: new Stream(uniqueName('r5'), redis, { maxLen: 0 }) };
}

describe('node-redis 5', () => {
  it('bytes, headers and a dedupId round trip through a sink and a reader', async (ctx) => {
    const { s } = await setup(ctx);
    const sink = await s.newSink('g', { blockMs: 100 });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(async () => {
      await sink.close();
      await reader.close();
    });
    const bytes = Buffer.from([0, 255, 128, 10, 13]);
    const id = await s.add('e', bytes, { headers: { tenant: 'acme' }, dedupId: 'once' });
    expect(await s.add('e', 'other', { dedupId: 'once' })).toBe(id);
    const [ev] = (await take(sink.subscribe()[Symbol.asyncIterator](), 1)) as SinkEvent[];
    expect([ev?.id, ev?.payload.equals(bytes), ev?.headers]).toEqual([id, true, { tenant: 'acme' }]);
    await ev?.ack();
    expect(sink.counters).toMatchObject({ delivered: 1, acked: 1, lost: 0 });
    const [rev] = await take(reader.subscribe()[Symbol.asyncIterator](), 1);
    expect(rev?.payload.equals(bytes)).toBe(true);
  });

  it('a sink across a Redis restart (AOF): events added before and after are each handled once', async (ctx) => {
    const { server, s } = await setup(ctx, ['--appendonly', 'yes', '--appendfsync', 'always']);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const handled: string[] = [];
    const run = sink.process((ev) => void handled.push(ev.text()));
    for (let i = 0; i < 5; i++) await s.add('e', `a${i}`);
    await waitFor(() => handled.length === 5, { what: 'a0..a4' });
    await server.restart();
    await waitFor(() => s.add('e', 'b0').catch(() => undefined), { timeout: 10_000, what: 'add after the restart' });
    await waitFor(() => handled.includes('b0'), { timeout: 10_000, what: 'b0 handled' });
    expect(handled).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0']);
    await sink.close();
    await run;
    expect(sink.counters.lost).toBe(0);
  }, 30_000);

  it('without a command timeout, an add given while the client reconnects is stored once Redis is back', async (ctx) => {
    const { server, redis, s } = await setup(ctx);
    await s.add('e', 'first'); // the stream exists (nothing else in it)
    await server.kill();
    await waitFor(() => !redis.isReady, { what: 'the client reconnecting' });
    const added = s.add('e', 'queued');
    await server.restart();
    const id = await within(added, 10_000, 'the add once Redis is back');
    const stored = (await redis.sendCommand(['XRANGE', s.key, String(id), String(id)])) as [string, string[]][];
    expect(stored[0]?.[1]).toContain('queued');
  }, 30_000);

  // Without a command timeout node-redis keeps a command given while it reconnects until Redis is
  // back (its offline queue): the add then waits as long (the user's choice, README "Install"; this
  // test failed so once in a loaded run, where the client had noticed the kill before the add).
  it('with Redis down: an add given while the client reconnects rejects after its command timeout; close() of a waiting sink does not hang', async (ctx) => {
    const { server, redis, s } = await setup(ctx, undefined, { timeout: 1000 });
    const sink = await s.newSink('g', { blockMs: 100 });
    const next = sink.subscribe().next();
    await server.kill();
    await waitFor(() => !redis.isReady, { what: 'the client reconnecting' });
    const err = await within(
      s.add('e', 'x').then(
        () => undefined,
        (e: unknown) => e,
      ),
      15_000,
      'add while Redis is down',
    );
    expect(err).toBeInstanceOf(PulseError);
    await within(sink.close(), 10_000, 'close while Redis is down');
    expect((await next).done).toBe(true);
  }, 30_000);
});
