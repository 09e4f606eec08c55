/**
 * Review: maxmemory reached with noeviction (OOM).
 *
 * README "Delivery guarantees": "An add that rejects with a Redis error (`WRONGTYPE`, `OOM`, ...;
 * `err.code` says which) was not stored." and "every event whose add resolved ends, for each sink,
 * in exactly one of these states: acked ..., dead-lettered ..., reported lost ... Nothing is
 * dropped silently." API.md: "Background loops never throw into the void: they retry with
 * jittered backoff and log".
 */
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take, waitFor, within } from './support/clients.js';
import { env, rejectionOf } from './support/fatalEnv.js';

const GRACE = 1000;
const BLOCK = 100;

describe.concurrent.each(CLIENT_KINDS)('OOM (%s)', (kind) => {
  it('add rejects with code OOM and stores nothing; everything resumes after memory is freed', async (ctx) => {
    const e = await env(ctx, kind, ['--maxmemory-policy', 'noeviction']);
    const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
    const reader = await s.newReader({ blockMs: BLOCK });
    e.defer(() => within(reader.close(), 5000, 'reader close'));
    const rs = reader.subscribe();
    const first = await s.add('e', 'before');
    expect((await take(rs, 1))[0]?.id).toBe(first);
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '1');
    const errs = await Promise.all(Array.from({ length: 20 }, (_, i) => rejectionOf(s.add('e', `oom-${i}`), 5000, 'add')));
    for (const err of errs) {
      expect(err).toBeInstanceOf(PulseError);
      expect((err as PulseError).code).toBe('OOM');
    }
    expect(await e.admin.cmd('XLEN', s.key)).toBe(1);
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await s.add('e', `after-${i}`));
    expect((await take(rs, 5)).map((x) => x.id)).toEqual(ids);
  });

  // The record Go Pulse services look for: a refusal a retry outlives (OOM here; TRYAGAIN, CLUSTERDOWN
  // during a migration or failover) left it unwritten for the life of the Stream instance, with a
  // warning that it could not be written (outside review E).
  it('the first add refused with OOM: the Go lifecycle record is written by a later add once memory is freed', async (ctx) => {
    const e = await env(ctx, kind, ['--maxmemory-policy', 'noeviction']);
    const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '1');
    expect(((await rejectionOf(s.add('e', 'refused'), 5000, 'add')) as PulseError).code).toBe('OOM');
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
    await s.add('e', 'stored');
    expect(await e.admin.cmd('HGET', `pulse:stream:${e.name}:lifecycle`, 'state')).toBe('active');
  });

  it('sink under OOM: acks, nacks and dead letters in flight are not lost, not duplicated, and complete once memory is freed; failures are logged', async (ctx) => {
    const e = await env(ctx, kind, ['--maxmemory-policy', 'noeviction']);
    const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE, maxDeliveries: 2 });
    e.defer(() => within(sink.close(), 5000, 'sink close'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handled = new Map<string, number[]>();
    const done = sink.process(
      async (ev) => {
        const seen = handled.get(ev.id) ?? [];
        seen.push(ev.deliveryCount);
        handled.set(ev.id, seen);
        await gate;
        if (ev.text() === 'poison') throw new Error('poison');
      },
      { concurrency: 50, retry: false },
    );
    // Seen rejected below; a handler now, or a rejection before that is unhandled.
    done.catch(() => {});
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await s.add('e', `ok-${i}`));
    const poison = await s.add('e', 'poison');
    await waitFor(() => handled.size === 21, { what: 'all events in handlers' });
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '1');
    release();
    // Three grace periods under OOM.
    await new Promise((r) => setTimeout(r, 3 * GRACE));
    const duringOom = e.lines.filter((l) => l.level !== 'debug' && /OOM|memory/i.test(JSON.stringify(l.obj))).length;
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
    await waitFor(async () => Number(((await e.admin.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
      timeout: 15_000,
      what: 'nothing pending in the source',
    });
    expect(Number(await e.admin.cmd('XLEN', `${s.key}:dead`))).toBe(1);
    for (const id of ids) expect(handled.get(id), `ok event ${id} handled once`).toEqual([1]);
    expect((handled.get(poison) ?? []).every((c) => c <= 2)).toBe(true);
    const logs = e.lines.filter((l) => l.level !== 'debug').map((l) => `${l.msg} ${JSON.stringify(l.obj).slice(0, 160)}`);
    // Whatever failed under OOM was said.
    if (sink.counters.acked < 20 || duringOom === 0) expect(logs.length).toBeGreaterThan(0);
    expect(sink.counters.lost).toBe(0);
    expect(sink.isClosed()).toBe(false);
    void done;
  });

  it('OOM in the middle of a claim script that dead-letters two events: each dead letter that Redis stored is counted and logged', async (ctx) => {
    const e = await env(ctx, kind, ['--maxmemory-policy', 'noeviction']);
    const s = new Stream(e.name, e.admin.redis, { logger: e.logger, maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE, maxDeliveries: 1, bufferSize: 10 });
    e.defer(() => within(sink.close(), 5000, 'sink close'));
    const big = 'x'.repeat(4 * 1024 * 1024);
    // A for-await loop that takes both and never acks: the claim step dead-letters both in one script call.
    const sub = sink.subscribe();
    const p1 = await s.add('e', big);
    const p2 = await s.add('e', big);
    const got = await take(sub, 2, 5000);
    // In either order: under load the two 4 MB adds took over a grace period, the subscription
    // took nothing meanwhile and gave p1 back, and took it back after p2 (a full run, ioredis).
    expect(got.map((x) => x.id).sort()).toEqual([p1, p2].sort());
    const used = Number(/used_memory:(\d+)/.exec(String(await e.admin.cmd('INFO', 'memory')))?.[1]);
    // Room for one more 4 MB entry, not two.
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', String(used + 2 * 1024 * 1024));
    await waitFor(async () => Number(await e.admin.cmd('XLEN', `${s.key}:dead`)) >= 1, {
      timeout: 10_000,
      what: 'a dead letter stored',
    });
    await new Promise((r) => setTimeout(r, 2 * GRACE));
    const storedDead = Number(await e.admin.cmd('XLEN', `${s.key}:dead`));
    const pendingNow = Number(((await e.admin.cmd('XPENDING', s.key, 'g')) as unknown[])[0]);
    const logs = e.lines.filter((l) => l.level !== 'debug').map((l) => `${l.msg} ${JSON.stringify(l.obj).slice(100, 220)}`);
    expect(
      { storedDead, counted: sink.counters.deadLettered },
      `pending ${pendingNow}; logs: ${logs.slice(-3).join(' | ')}`,
    ).toEqual({ storedDead, counted: storedDead });
    expect(
      e.lines.some((l) => l.msg === 'events dead-lettered after max deliveries'),
      'the dead letter is logged',
    ).toBe(true);
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
  });
});
