/**
 * A client that switched database with SELECT (outside review P). The library's own
 * connections (adds, sinks' and readers' reads) were duplicated from the client's construction
 * options: after `select(3)`, ioredis adds were stored in database 0, and the sinks and readers of
 * both clients read database 0, while the client, Go services and the CLI looked at database 3.
 * They now use the database the client uses: adds the one it uses when they are issued (as
 * node-redis, whose adds travel on the client itself), sinks and readers the one it used when they
 * were created.
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, take, uniqueName } from './support/clients.js';

const DB = 3;

/** A plain ioredis client on database `db`, closed when the test ends: to look at what landed where. */
function lookAt(ctx: TestContext, db: number): Redis {
  const r = new Redis(sharedUrl(), { db });
  ctx.onTestFinished(() => r.disconnect());
  return r;
}

/** Deletes every key of stream `name` from databases 0 and DB when the test ends. */
function cleanUp(ctx: TestContext, name: string, db0: Redis, dbN: Redis): void {
  ctx.onTestFinished(async () => {
    for (const r of [db0, dbN]) {
      const keys = [...(await r.keys(`{pulse:stream:${name}}:*`)), `pulse:stream:${name}`, `pulse:stream:${name}:lifecycle`];
      await r.del(...keys);
    }
  });
}

describe.concurrent('the database a client SELECTed', () => {
  it('ioredis: after redis.select(3), adds, Go records, sinks and readers use database 3', async (ctx: TestContext) => {
    const redis = new Redis(sharedUrl());
    ctx.onTestFinished(() => redis.disconnect());
    await redis.select(DB);
    const [db0, dbN] = [lookAt(ctx, 0), lookAt(ctx, DB)];
    const s = new Stream(uniqueName('sel'), redis, { maxLen: 0 });
    cleanUp(ctx, s.name, db0, dbN);
    const sink = await s.newSink('g', { startAt: 'oldest' });
    ctx.onTestFinished(() => sink.close());
    const reader = await s.newReader({ startAt: 'oldest' });
    ctx.onTestFinished(() => reader.close());
    const ids = [await s.add('e', 'x'), await s.add('e', 'y')];
    expect({ db: await dbN.xlen(s.key), db0: await db0.exists(s.key, `pulse:stream:${s.name}:lifecycle`) }).toEqual({
      db: 2,
      db0: 0,
    });
    expect(await dbN.type(`pulse:stream:${s.name}:lifecycle`)).toBe('hash');
    expect((await take(sink.subscribe(), 2)).map((e) => e.id)).toEqual(ids);
    expect((await take(reader.subscribe(), 2)).map((e) => e.id)).toEqual(ids);
  });

  it('ioredis: a stream that added in database 0 adds to database 3 once the client selected it', async (ctx: TestContext) => {
    const redis = new Redis(sharedUrl());
    ctx.onTestFinished(() => redis.disconnect());
    const [db0, dbN] = [lookAt(ctx, 0), lookAt(ctx, DB)];
    const s = new Stream(uniqueName('sel'), redis, { maxLen: 0 });
    cleanUp(ctx, s.name, db0, dbN);
    await s.add('e', 'before');
    await redis.select(DB);
    // Issued together, so they leave in one pipeline on the library's publishing connection.
    await Promise.all([s.add('e', 'after1'), s.add('e', 'after2')]);
    expect({ db0: await db0.xlen(s.key), db: await dbN.xlen(s.key) }).toEqual({ db0: 1, db: 2 });
    await redis.select(0);
    await s.add('e', 'back');
    expect({ db0: await db0.xlen(s.key), db: await dbN.xlen(s.key) }).toEqual({ db0: 2, db: 2 });
  });

  it('node-redis: after client.select(3), adds, sinks and readers use database 3', async (ctx: TestContext) => {
    const client = createClient({ url: sharedUrl() });
    await client.connect();
    ctx.onTestFinished(() => client.destroy());
    await client.select(DB);
    const [db0, dbN] = [lookAt(ctx, 0), lookAt(ctx, DB)];
    const s = new Stream(uniqueName('sel'), client, { maxLen: 0 });
    cleanUp(ctx, s.name, db0, dbN);
    const sink = await s.newSink('g', { startAt: 'oldest' });
    ctx.onTestFinished(() => sink.close());
    const reader = await s.newReader({ startAt: 'oldest' });
    ctx.onTestFinished(() => reader.close());
    const ids = [await s.add('e', 'x'), await s.add('e', 'y')];
    expect({ db: await dbN.xlen(s.key), db0: await db0.exists(s.key) }).toEqual({ db: 2, db0: 0 });
    expect((await take(sink.subscribe(), 2)).map((e) => e.id)).toEqual(ids);
    expect((await take(reader.subscribe(), 2)).map((e) => e.id)).toEqual(ids);
  });
});
