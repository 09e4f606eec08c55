/**
 * ACL users lacking permissions the library needs.
 *
 * API.md "Errors": "Redis failures in direct calls reject with a PulseError whose cause is the
 * client's error. Background loops never throw into the void: they retry with jittered backoff and
 * log; a fatal condition ends the subscriptions with that error."
 * Project standard: "a Redis error that retrying cannot fix ends the subscriptions with that error
 * instead of retrying forever".
 */
import { describe, expect, it } from 'vitest';
import { PulseError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take, waitFor, within } from './support/clients.js';
import { env, outcome, rejectionOf } from './support/fatalEnv.js';

const GRACE = 1000;
const BLOCK = 100;
const NO_SCRIPTS = ['-evalsha', '-eval', '-evalsha_ro', '-eval_ro', '-script', '-fcall', '-fcall_ro', '-function'];

describe.concurrent.each(CLIENT_KINDS)('ACL (%s)', (kind) => {
  it('no EVAL/EVALSHA: add still stores the event (plain XADD path) and says the lifecycle record could not be written', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', ...NO_SCRIPTS);
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const r = await outcome(s.add('e', 'x'), 5000, 'add');
    if (!r.ok) {
      // Rejecting is fine too, as long as it is typed and says NOPERM.
      expect(r.err).toBeInstanceOf(PulseError);
      expect((r.err as PulseError).code).toBe('NOPERM');
      expect(await e.admin.cmd('EXISTS', s.key)).toBe(0);
      return;
    }
    expect(await e.admin.cmd('XLEN', s.key)).toBe(1);
    expect(e.lines.some((l) => l.level === 'warn' && /lifecycle/.test(String(l.msg)))).toBe(true);
  });

  it('no EVAL/EVALSHA: newSink rejects, or its subscriptions end with NOPERM; close() bounded', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', ...NO_SCRIPTS);
    const admin = new Stream(e.name, e.admin.redis);
    await admin.add('e', 'first');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const r = await outcome(s.newSink('g', { startAt: 'oldest', blockMs: BLOCK, ackGracePeriodMs: GRACE }), 10_000, 'newSink');
    if (!r.ok) {
      expect(r.err).toBeInstanceOf(PulseError);
      expect((r.err as PulseError).code).toBe('NOPERM');
      return;
    }
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: BLOCK, ackGracePeriodMs: GRACE });
    const done = sink.process(async () => {});
    // Seen rejected below; a handler now, or a rejection before that is unhandled.
    done.catch(() => {});
    const p = await outcome(done, 15_000, 'process() to end with the error');
    expect(p.ok).toBe(false);
    expect(((p as { err: PulseError }).err as PulseError).code).toBe('NOPERM');
    await within(sink.close(), 5000, 'close');
  });

  it('no EVAL/EVALSHA: a reader delivers, or its subscriptions end with NOPERM; no endless failure loop', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', ...NO_SCRIPTS);
    const admin = new Stream(e.name, e.admin.redis);
    await admin.add('e', 'first');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const o = await outcome(s.newReader({ blockMs: BLOCK, startAt: 'oldest' }), 10_000, 'newReader');
    if (!o.ok) {
      // A typed refusal up front is fine.
      expect(o.err).toBeInstanceOf(PulseError);
      expect((o.err as PulseError).code).toBe('NOPERM');
      return;
    }
    const reader = await s.newReader({ blockMs: BLOCK, startAt: 'oldest' });
    e.defer(() => within(reader.close(), 5000, 'close'));
    const rs = reader.subscribe();
    const ids = [await admin.add('e', 'a'), await admin.add('e', 'b')];
    const r = await outcome(take(rs, 3, 5000), 6000, 'reads');
    if (!r.ok) {
      expect(((r as { err: PulseError }).err as PulseError).code).toBe('NOPERM');
      return;
    }
    void ids;
    const w0 = e.lines.filter((l) => l.level === 'warn').length;
    await new Promise((res) => setTimeout(res, 3000));
    const w1 = e.lines.filter((l) => l.level === 'warn').length;
    expect(
      w1 - w0,
      `warn lines in 3 s: ${e.lines
        .slice(-2)
        .map((l) => l.msg)
        .join(' | ')}`,
    ).toBeLessThan(3);
  });

  it('EVALSHA revoked while a sink runs process(): process() ends with NOPERM instead of sweeping forever', async (ctx) => {
    const e = await env(ctx, kind);
    const { user, client } = await e.user('~*', '&*', '+@all');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
    const seen: string[] = [];
    const done = sink.process(async (ev) => {
      seen.push(ev.id);
    });
    // Seen rejected below; a handler now, or a rejection before that is unhandled.
    done.catch(() => {});
    const id = await s.add('e', 'x');
    await waitFor(() => seen.includes(id), { what: 'first event' });
    await e.admin.cmd('ACL', 'SETUSER', user, ...NO_SCRIPTS);
    const r = await outcome(done, 15_000, 'process() to end with the error');
    const sweepWarnings = e.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(
      r.ok,
      `process() still running; warn lines: ${JSON.stringify(sweepWarnings.slice(0, 5))} (${sweepWarnings.length})`,
    ).toBe(false);
    expect(((r as { err: PulseError }).err as PulseError).code).toBe('NOPERM');
    await within(sink.close(), 5000, 'close');
  });

  it('no XAUTOCLAIM/XCLAIM: a nacked event is redelivered, or process() ends with NOPERM (never stuck pending silently)', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', '-xautoclaim', '-xclaim');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
    const counts: number[] = [];
    const done = sink.process(
      async (ev) => {
        counts.push(ev.deliveryCount);
        if (ev.deliveryCount === 1) throw new Error('first try fails');
      },
      { retry: false },
    );
    // Seen rejected below; a handler now, or a rejection before that is unhandled.
    done.catch(() => {});
    await s.add('e', 'x');
    const ended = done.then(
      () => ({ ok: true as const }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const r = await within(
      Promise.race([
        ended,
        waitFor(() => counts.includes(2), { timeout: 15_000, what: 'redelivery' }).then(() => 'redelivered' as const),
      ]),
      16_000,
      'redelivery or end',
    ).catch((err: unknown) => err);
    const warns = e.lines.filter((l) => l.level !== 'debug').map((l) => `${l.msg} ${JSON.stringify(l.obj)}`);
    expect(
      r === 'redelivered' || (typeof r === 'object' && r !== null && 'ok' in r && !r.ok),
      `neither: ${String(r)}; logs: ${warns.slice(0, 4).join(' | ')} (${warns.length})`,
    ).toBe(true);
    if (r !== 'redelivered') expect(((r as { err: PulseError }).err as PulseError).code).toBe('NOPERM');
    await within(sink.close(), 5000, 'close');
  });

  it('no XGROUP: newSink rejects with PulseError code NOPERM', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', '-xgroup');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    await s.add('e', 'x').catch(() => {});
    const err = await rejectionOf(s.newSink('g', { blockMs: BLOCK }), 10_000, 'newSink');
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('NOPERM');
  });

  it('no XGROUP, group destroyed under a live sink: the subscription ends with NOPERM (no endless recreate loop)', async (ctx) => {
    const e = await env(ctx, kind);
    const ownLines = e.lines;
    const { user, client } = await e.user('~*', '&*', '+@all');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
    const sub = sink.subscribe();
    const id = await s.add('e', 'x');
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(id);
    await ev?.ack();
    await e.admin.cmd('ACL', 'SETUSER', user, '-xgroup');
    await e.admin.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const err = await within(
      take(sub, 1, 60_000).then(
        () => new Error('delivered'),
        (x: unknown) => x,
      ),
      15_000,
      'the subscription to end',
    ).catch((x: unknown) => x);
    void ownLines;
    const logs = e.lines.filter((l) => l.level !== 'debug').map((l) => l.msg);
    // Whatever happens, not a loop of retries that each log a failure and a recovery.
    expect(e.lines.filter((l) => l.msg === 'read recovered').length, 'read recovered lines in 15 s').toBeLessThan(20);
    expect(err, `logs: ${logs.slice(-5).join(' | ')} (${logs.length})`).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('NOPERM');
    await within(sink.close(), 5000, 'close');
  });

  it('no CLIENT command: reader and sink still deliver (or fail typed), close() bounded', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', '-client');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const reader = await s.newReader({ blockMs: BLOCK });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
    const rs = reader.subscribe();
    const ks = sink.subscribe();
    const id = await s.add('e', 'x');
    expect((await take(rs, 1))[0]?.id).toBe(id);
    const [ev] = await take(ks, 1);
    expect(ev?.id).toBe(id);
    await ev?.ack();
    await within(reader.close(), 5000, 'reader close');
    await within(sink.close(), 5000, 'sink close');
  });

  it('read-only user (~* -@write +@read): add rejects NOPERM, reader reads, newSink rejects NOPERM', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user('~*', '&*', '+@all', '-@write', '+@read');
    const admin = new Stream(e.name, e.admin.redis);
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const addErr = await rejectionOf(s.add('e', 'x'), 5000, 'add');
    expect(addErr).toBeInstanceOf(PulseError);
    expect((addErr as PulseError).code).toBe('NOPERM');
    const reader = await within(s.newReader({ blockMs: BLOCK }), 5000, 'newReader');
    const rs = reader.subscribe();
    const id = await admin.add('e', 'y');
    expect((await take(rs, 1))[0]?.id).toBe(id);
    await within(reader.close(), 5000, 'reader close');
    const sinkErr = await rejectionOf(s.newSink('g', { blockMs: BLOCK }), 10_000, 'newSink');
    expect(sinkErr).toBeInstanceOf(PulseError);
    expect((sinkErr as PulseError).code).toBe('NOPERM');
  });

  it('dead-letter stream not writable: process() ends with NOPERM, the poison event still pending', async (ctx) => {
    const e = await env(ctx, kind);
    // Every key but the dead-letter stream. Redis checks the keys a script declares before it runs,
    // and the claim script declares the dead-letter stream: no claim can run, so the sink ends.
    const { client } = await e.user(`~pulse:stream:${e.name}`, `~pulse:stream:${e.name}:lifecycle`, '~{*', '&*', '+@all');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE, maxDeliveries: 2 });
    const counts: number[] = [];
    const done = sink.process(
      async (ev: SinkEvent) => {
        counts.push(ev.deliveryCount);
        throw new Error('poison');
      },
      { retry: false },
    );
    // Seen rejected below; a handler now, or a rejection before that is unhandled.
    done.catch(() => {});
    await s.add('e', 'poison');
    const r = await outcome(done, 15_000, 'process() to end with the error');
    const logs = e.lines.filter((l) => l.level !== 'debug').map((l) => `${l.msg} ${JSON.stringify(l.obj).slice(0, 200)}`);
    expect(r.ok, `process() still running after 15 s; logs: ${logs.slice(-4).join(' | ')} (${logs.length} lines)`).toBe(false);
    expect(((r as { err: PulseError }).err as PulseError).code).toBe('NOPERM');
    expect(
      counts.every((c) => c <= 2),
      `deliveries: ${counts.join(',')}`,
    ).toBe(true);
    // Not lost: still pending in the source.
    const pending = (await e.admin.cmd('XPENDING', s.key, 'g')) as unknown[];
    expect(Number(pending[0]), 'still pending in the source').toBe(1);
    await within(sink.close(), 5000, 'close');
  });

  it('ACL user disabled under live reader and sink: close() is bounded', async (ctx) => {
    const e = await env(ctx, kind);
    const { user, client } = await e.user('~*', '&*', '+@all');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const reader = await s.newReader({ blockMs: BLOCK });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
    const rs = reader.subscribe();
    const ks = sink.subscribe();
    const id = await s.add('e', 'x');
    expect((await take(rs, 1))[0]?.id).toBe(id);
    await (await take(ks, 1))[0]?.ack();
    await e.admin.cmd('ACL', 'SETUSER', user, 'off');
    await e.admin.cmd('CLIENT', 'KILL', 'USER', user);
    await waitFor(() => e.lines.some((l) => /WRONGPASS/.test(JSON.stringify(l.obj))), { timeout: 5000, what: 'a WRONGPASS' });
    await within(reader.close(), 5000, 'reader close');
    await within(sink.close(), 5000, 'sink close');
  });

  it('ACL user disabled (WRONGPASS on every reconnect): retried, said at warn, and resumed once enabled again', {
    timeout: 30_000,
  }, async (ctx) => {
    const e = await env(ctx, kind);
    const { user, client } = await e.user('~*', '&*', '+@all');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const admin = new Stream(e.name, e.admin.redis);
    const reader = await s.newReader({ blockMs: BLOCK });
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
    e.defer(() => within(Promise.all([reader.close(), sink.close()]), 5000, 'close'));
    const rs = reader.subscribe();
    const ks = sink.subscribe();
    const a = await admin.add('e', 'a');
    expect((await take(rs, 1))[0]?.id).toBe(a);
    await (await take(ks, 1))[0]?.ack();
    await e.admin.cmd('ACL', 'SETUSER', user, 'off');
    await e.admin.cmd('CLIENT', 'KILL', 'USER', user);
    // A password change or a disabled user may be fixed by an operator: retried, but never only at debug level.
    await waitFor(() => e.lines.some((l) => l.level === 'warn' && /WRONGPASS/.test(JSON.stringify(l.obj))), {
      timeout: 10_000,
      what: 'a warning that says WRONGPASS',
    });
    const b = await admin.add('e', 'b');
    await e.admin.cmd('ACL', 'SETUSER', user, 'on');
    expect((await take(rs, 1, 15_000))[0]?.id).toBe(b);
    const [ev] = await take(ks, 1, 15_000);
    expect(ev?.id).toBe(b);
    await ev?.ack();
  });
});
