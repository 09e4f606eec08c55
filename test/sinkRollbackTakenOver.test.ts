/**
 * After a rollback of Redis (a restart from an older RDB snapshot), the
 * events a sink treats as "lost by Redis while it held them" (handed out
 * from its buffer, let run under inProgress(), counted lost when given back)
 * are only those the snapshot never had. An event the snapshot kept came
 * back pending for this consumer; taken over after the grace period, acked
 * elsewhere and trimmed, it must be dropped as any other taken-over event:
 * it was handed out again, inProgress() resolved, and a nack counted a
 * false loss (a review of this session's rollback change).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, NotOwnedError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, stays, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const ROLLED_BACK = /Redis lost entries it had acknowledged/;

describe.concurrent.each(CLIENT_KINDS)('an event the snapshot kept, taken over after a rollback (%s)', (kind) => {
  /**
   * Sink A handles a0 (a long handler), the snapshot is taken, A reads b0, Redis restarts from the
   * snapshot (b0 gone, a0 back pending for A) and A finds the rollback; then another instance B
   * takes a0 over after the grace period and acks it.
   */
  async function keptThenTakenOver(ctx: TestContext) {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const name = uniqueName('rbtaken');
    const s = new Stream(name, c.redis, { logger: logger as Logger, maxLen: 0 });
    const grace = 1000;
    const sinkA = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: grace, bufferSize: 1, maxPolled: 1 });
    ctx.onTestFinished(() => within(sinkA.close(), 10_000, 'close A'));
    const itA = sinkA.subscribe()[Symbol.asyncIterator]();
    await s.add('e', 'a0');
    const a0 = (await within(itA.next(), 10_000, 'a0')).value as SinkEvent; // a long handler runs on a0
    await c.cmd('SAVE'); // the snapshot: a0, pending for A
    await s.add('e', 'b0');
    await within(itA.next(), 10_000, 'b0'); // read by A after the snapshot: Redis loses it
    await server.restart(); // b0 is gone; a0 is back, pending for A as in the snapshot
    await waitFor(() => s.add('e', 'n0').catch(() => undefined), { timeout: 10_000, what: 'add n0' });
    await waitFor(() => lines.some((l) => l.level === 'warn' && ROLLED_BACK.test(String(l.msg))), {
      timeout: 10_000,
      what: 'A finds the rollback',
    });
    // Another instance of the sink takes a0 over after the grace period and handles it, and n0:
    // A gave n0 back once its loop took nothing for a grace period (or never read it), and B took
    // a0 first at times; left pending for A, the trim below took n0 unhandled, which A rightly
    // counted lost (this test failed in a full run).
    const s2 = new Stream(name, c.redis, { maxLen: 0 });
    const sinkB = await s2.newSink('g', { blockMs: 100, ackGracePeriodMs: grace });
    ctx.onTestFinished(() => within(sinkB.close(), 10_000, 'close B'));
    const itB = sinkB.subscribe()[Symbol.asyncIterator]();
    const gotB: string[] = [];
    while (!gotB.includes('a0') || !gotB.includes('n0')) {
      const ev = (await within(itB.next(), 15_000, 'B takes a0 over')).value as SinkEvent;
      gotB.push(ev.text());
      await ev.ack();
    }
    return { c, s, sinkA, a0, lines };
  }

  it('inProgress() of an event the snapshot kept, taken over and acked by another consumer, throws NotOwnedError', async (ctx) => {
    const { a0 } = await keptThenTakenOver(ctx);
    // a0 is in the stream, handled and acked by B: A's handler must be told it is not A's any more.
    const outcome = await a0.inProgress().then(
      () => 'resolved: the handler goes on with an event another consumer handled',
      (e: Error) => (e instanceof NotOwnedError ? 'NotOwnedError' : `other error: ${e.message}`),
    );
    expect(outcome).toBe('NotOwnedError');
  }, 40_000);

  it('nack() of an event the snapshot kept, taken over, acked by another consumer and trimmed since, counts no loss', async (ctx) => {
    const { c, s, sinkA, a0, lines } = await keptThenTakenOver(ctx);
    // a0 was handled by B; maxLen (here XTRIM) then removes it. A's handler fails late and nacks it.
    await c.cmd('XTRIM', s.key, 'MAXLEN', '0');
    const lostBefore = sinkA.counters.lost;
    await a0.nack().catch(() => {});
    await stays(
      () => sinkA.counters.lost === lostBefore && !lines.some((l) => /cannot be redelivered/.test(String(l.msg))),
      300,
      'no loss counted or said for an event another consumer handled',
    );
  }, 40_000);

  it('a buffered event the snapshot kept, taken over, acked elsewhere and trimmed, is not handed out again', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('rbtakenbuf'), c.redis, { logger: logger as Logger, maxLen: 0 });
    const grace = 6000;
    const sinkA = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: grace, bufferSize: 5, maxPolled: 5 });
    ctx.onTestFinished(() => within(sinkA.close(), 10_000, 'close A'));
    const sub = sinkA.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    await s.add('e', 'x0');
    await ((await within(it0.next(), 10_000, 'x0')).value as SinkEvent).ack(); // the subscriber is active
    const a0 = await s.add('e', 'a0');
    await waitFor(() => sub.size >= 1, { what: 'a0 buffered' });
    await c.cmd('SAVE'); // the snapshot: a0, pending for A
    await s.add('e', 'b0');
    await waitFor(() => sub.size >= 2, { what: 'b0 buffered' });
    await server.restart(); // b0 is gone from Redis (A holds it); a0 is back, pending for A
    const n0 = await waitFor(() => s.add('e', 'n0').catch(() => undefined), { timeout: 10_000, what: 'add n0' });
    await waitFor(() => lines.some((l) => l.level === 'warn' && ROLLED_BACK.test(String(l.msg))), {
      timeout: 10_000,
      what: 'A finds the rollback',
    });
    // Another instance takes a0 over (its hold lapsed while Redis was away), handles and acks it,
    // and maxLen trims it: what that instance's claim, ack and a later add do.
    await c.cmd('MULTI');
    await c.cmd('XCLAIM', s.key, 'g', 'other-instance', '0', a0, 'JUSTID');
    await c.cmd('XACK', s.key, 'g', a0);
    await c.cmd('XTRIM', s.key, 'MINID', n0 as string);
    await c.cmd('EXEC');
    // A's ownership check of its buffer runs (a hold tick, every grace / 3) before the subscriber
    // takes more: the step this case is about, not an assertion.
    await new Promise((r) => setTimeout(r, 2600));
    const got: string[] = [];
    for (;;) {
      const ev = (await within(it0.next(), 10_000, 'next event')).value as SinkEvent;
      got.push(ev.text());
      await ev.ack().catch(() => {});
      if (ev.id === n0) break;
    }
    // b0 (Redis lost it, A has the only copy) is handed out; a0 was handled by the other instance.
    expect(got).toEqual(['b0', 'n0']);
  }, 40_000);
});
