/**
 * WRONGTYPE: keys the library uses hold another type.
 *
 * README: "An add that rejects with a Redis error (`WRONGTYPE`, `OOM`, ...; `err.code` says which)
 * was not stored." Project standard: "a Redis error that retrying cannot fix ends the subscriptions
 * with that error instead of retrying forever; nothing stored is lost or corrupted."
 */
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys, sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, take, waitFor, within } from './support/clients.js';
import { env, outcome, rejectionOf } from './support/fatalEnv.js';

const GRACE = 1000;
const BLOCK = 100;

describe.concurrent.each(CLIENT_KINDS)('WRONGTYPE (%s)', (kind) => {
  it.for([
    ['a string', ['SET', 'v']],
    ['a hash', ['HSET', 'f', 'v']],
  ] as const)(
    'stream key is %s: add, newReader and newSink fail with WRONGTYPE and leave the key as it was',
    async ([_w, cmd], ctx) => {
      const e = await env(ctx, kind);
      const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
      const [c, ...rest] = cmd as readonly string[];
      await e.admin.cmd(c as string, s.key, ...rest);
      const typeBefore = await e.admin.cmd('TYPE', s.key);
      const addErr = await rejectionOf(s.add('e', 'x'), 5000, 'add');
      expect(addErr).toBeInstanceOf(PulseError);
      expect((addErr as PulseError).code).toBe('WRONGTYPE');
      const sinkErr = await rejectionOf(s.newSink('g', { blockMs: BLOCK }), 5000, 'newSink');
      expect(sinkErr).toBeInstanceOf(PulseError);
      expect((sinkErr as PulseError).code).toBe('WRONGTYPE');
      const r = await outcome(s.newReader({ blockMs: BLOCK, startAt: 'oldest' }), 5000, 'newReader');
      if (r.ok) {
        const reader = await s.newReader({ blockMs: BLOCK, startAt: 'oldest' });
        e.defer(() => reader.close());
        const err = await rejectionOf(take(reader.subscribe(), 1, 60_000), 5000, 'reader subscription end');
        expect((err as PulseError).code).toBe('WRONGTYPE');
      } else {
        expect((r.err as PulseError).code).toBe('WRONGTYPE');
      }
      expect(await e.admin.cmd('TYPE', s.key)).toBe(typeBefore);
    },
  );

  it('dead-letter stream key is a string: the poison event is not lost, the string is kept, and process() ends with WRONGTYPE', async (ctx) => {
    const e = await env(ctx, kind);
    const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
    await e.admin.cmd('SET', `${s.key}:dead`, 'not a stream');
    const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE, maxDeliveries: 2 });
    e.defer(() => within(sink.close(), 5000, 'close'));
    const counts: number[] = [];
    const okSeen: string[] = [];
    const done = sink.process(
      async (ev) => {
        if (ev.text() !== 'poison') {
          okSeen.push(ev.id);
          return;
        }
        counts.push(ev.deliveryCount);
        throw new Error('poison');
      },
      { retry: false },
    );
    // Seen rejected below; a handler now, or a rejection before that is unhandled.
    done.catch(() => {});
    await s.add('e', 'poison');
    await waitFor(() => counts.length >= 2, { timeout: 8000, what: 'two deliveries of the poison event' });
    const r = await outcome(done, 15_000, 'process() to end');
    const logs = e.lines.filter((l) => l.level !== 'debug').map((l) => `${l.msg} ${JSON.stringify(l.obj).slice(100, 260)}`);
    expect(await e.admin.cmd('GET', `${s.key}:dead`)).toBe('not a stream');
    expect(Number(((await e.admin.cmd('XPENDING', s.key, 'g')) as unknown[])[0]), 'poison still pending').toBe(1);
    expect(
      counts.every((c) => c <= 2),
      `deliveries ${counts.join(',')}`,
    ).toBe(true);
    expect(r.ok, `process() still running after 15 s; ${logs.length} log lines, last: ${logs.slice(-3).join(' | ')}`).toBe(false);
    expect(((r as { err: PulseError }).err as PulseError).code).toBe('WRONGTYPE');
  });

  it.for(['consumers', 'delays', 'instances'] as const)(
    'bookkeeping key %s replaced by a string while a sink runs: redelivery keeps working, or the sink ends with WRONGTYPE; no endless failure loop',
    async (which, ctx) => {
      const e = await env(ctx, kind);
      const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
      const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE });
      e.defer(() => within(sink.close(), 5000, 'close'));
      const counts = new Map<string, number[]>();
      const done = sink.process(
        async (ev) => {
          const c = counts.get(ev.id) ?? [];
          c.push(ev.deliveryCount);
          counts.set(ev.id, c);
          if (ev.deliveryCount === 1) throw new Error('first try fails');
        },
        { retry: { delayMs: 100, jitter: 0 } },
      );
      // Seen rejected below; a handler now, or a rejection before that is unhandled.
      done.catch(() => {});
      const a = await s.add('e', 'a');
      await waitFor(() => counts.get(a)?.length === 2, { timeout: 8000, what: 'redelivery before' });
      const key = which === 'instances' ? sinkWideKeys('g').instances : sinkKeys(s.name, 'g')[which];
      await e.admin.cmd('DEL', key);
      await e.admin.cmd('SET', key, 'x');
      const ended = done.then(
        () => 'resolved' as const,
        (err: unknown) => err,
      );
      const b = await s.add('e', 'b');
      const r = await within(
        Promise.race([
          ended,
          waitFor(() => counts.get(b)?.length === 2, { timeout: 10_000, what: 'redelivery after' }).then(
            () => 'redelivered' as const,
          ),
        ]),
        11_000,
        'redelivery or end',
      ).catch((err: unknown) => err);
      const warnLines = () => e.lines.filter((l) => l.level === 'warn' || l.level === 'error').length;
      const logs = e.lines.filter((l) => l.level !== 'debug').map((l) => `${l.msg} ${JSON.stringify(l.obj).slice(100, 250)}`);
      if (r !== 'redelivered') {
        expect(r, `neither redelivered nor ended; logs ${logs.length}: ${logs.slice(-3).join(' | ')}`).toBeInstanceOf(PulseError);
        expect((r as PulseError).code).toBe('WRONGTYPE');
        return;
      }
      // Redelivery works: the failure must not go on being retried and logged forever.
      const before = warnLines();
      await new Promise((res) => setTimeout(res, 4 * GRACE));
      const more = warnLines() - before;
      expect(more, `still failing after redelivery: ${logs.slice(-2).join(' | ')}`).toBeLessThan(3);
    },
  );
});
