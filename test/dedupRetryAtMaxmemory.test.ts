/**
 * Outside review AM (defect 1; line numbers as of commit 3327f93): a retry with a dedupId whose event is stored rejects
 * with OOM ("not stored") when Redis is at maxmemory, instead of resolving to
 * the stored event's ID, whenever the retry's window is longer than the one
 * the dedup hashes keep (README "Idempotent publish": the CLI's 2 minutes and
 * an application's 10 minutes share a stream). The add script's hit branch
 * (dedupLua.ts DEDUP_RECORD, "Nothing recorded, but a record answered an add
 * whose window is longer") writes SPAN_FIELD with redis.call('HSET'): the
 * first write of a script that has written nothing is refused at maxmemory,
 * and redis.call raises, failing the whole call. The event exists, so the
 * README's "an add that rejects with a Redis error (OOM, ...) was not stored"
 * is false for it, and the retry does not resolve to its ID. The same retry
 * with a window no longer than the stored one resolves to the ID (no write).
 * Failed before the fix: 2 of 2 (both clients), with "OOM command not allowed
 * ... on @user_script:353" (the hit branch's HSET).
 * Fixed: the hit branch's span write is best effort (pcall), and after an error the add script still answers the dedupIds it knows ('!' marks the adds not run).
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

type Ctx = { onTestFinished(fn: () => unknown): void };

async function client(kind: string, srv: RedisServer, ctx: Ctx) {
  if (kind === 'ioredis') {
    const r = new Redis(srv.url, { lazyConnect: true });
    r.on('error', () => {});
    await r.connect();
    ctx.onTestFinished(() => r.disconnect());
    return r;
  }
  const c = createClient({ url: srv.url });
  c.on('error', () => {});
  await c.connect();
  ctx.onTestFinished(() => c.destroy());
  return c;
}

/** Puts the server past its maxmemory (noeviction): every write that may grow memory is refused. */
async function overMaxmemory(admin: Redis): Promise<void> {
  await admin.set('junk', 'x'.repeat(1024 * 1024));
  await admin.config('SET', 'maxmemory', '1000000');
}

describe.each(CLIENT_KINDS)('dedup retry at maxmemory (%s)', (kind) => {
  it('a retry of a stored event with a longer dedupWindowMs resolves to its ID, not OOM', async (ctx) => {
    const srv = await RedisServer.start({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] });
    ctx.onTestFinished(() => srv.stop());
    const redis = await client(kind, srv, ctx);
    const admin = new Redis(srv.url);
    ctx.onTestFinished(() => admin.disconnect());
    const name = uniqueName('dedupoom');
    // The CLI's window (2 minutes) first, then an application's (10 minutes).
    const cli = new Stream(name, redis as never, { dedupWindowMs: 120_000 });
    const app = new Stream(name, redis as never, { dedupWindowMs: 600_000 });
    const id = await cli.add('order.created', 'o-1', { dedupId: 'order-1' });
    await overMaxmemory(admin);
    // Past maxmemory: a small write is refused.
    await expect(admin.set('probe', 'x')).rejects.toThrow(/OOM/);
    const retry = await app.add('order.created', 'o-1', { dedupId: 'order-1' }).then(
      (v) => ({ ok: v }),
      (err: unknown) => ({ err: String(err) }),
    );
    // The event is stored once.
    expect(await admin.xlen(cli.key)).toBe(1);
    expect(retry).toEqual({ ok: id });
  }, 30_000);

  it('at maxmemory, a retry merged behind a new add (same window) still resolves to its stored ID', async (ctx) => {
    const srv = await RedisServer.start({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] });
    ctx.onTestFinished(() => srv.stop());
    const redis = await client(kind, srv, ctx);
    const admin = new Redis(srv.url);
    ctx.onTestFinished(() => admin.disconnect());
    const s = new Stream(uniqueName('dedupoom'), redis as never);
    const id = await s.add('order.created', 'o-1', { dedupId: 'order-1' });
    await overMaxmemory(admin);
    // Alone, the retry resolves to the stored ID at maxmemory (it writes nothing).
    expect(await s.add('order.created', 'o-1', { dedupId: 'order-1' })).toBe(id);
    // In one tick with a new event (refused: OOM), the retry is merged behind it into one call.
    const [fresh, retry] = await Promise.allSettled([
      s.add('order.created', 'o-2', { dedupId: 'order-2' }),
      s.add('order.created', 'o-1', { dedupId: 'order-1' }),
    ]);
    expect(fresh?.status).toBe('rejected');
    expect(await admin.xlen(s.key)).toBe(1);
    expect(retry?.status === 'fulfilled' ? retry.value : String((retry as PromiseRejectedResult).reason)).toBe(id);
  }, 30_000);
});
