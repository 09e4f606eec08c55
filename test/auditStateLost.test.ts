/**
 * Audit: README "reported lost: ... its group destroyed, or Redis state lost — through the logger (warn)
 * and sink.counters.lost" and "Redis without persistence loses everything on restart (sinks then recreate
 * their group at 0 once a producer recreates the stream, and say so in the log)".
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, stays, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

async function setup(ctx: TestContext, kind: ClientKind) {
  const server = await RedisServer.start();
  const c = await connect(kind, server.url);
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('state'), c.redis, { logger, maxLen: 0 });
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
  ctx.onTestFinished(async () => {
    await sink.close().catch(() => {});
    await c.close();
    await server.stop();
  });
  return { server, c, lines, s, sink };
}

describe.concurrent.each(CLIENT_KINDS)('audit: state lost (%s)', (kind) => {
  it('README: a group destroyed on a live stream is recreated at 0, its unacked events come again as first deliveries, said at warn', async (ctx) => {
    const { c, lines, s, sink } = await setup(ctx, kind);
    const sub = sink.subscribe();
    await s.add('e', 'held');
    const [held] = (await take(sub, 1)) as [SinkEvent];
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const after = await s.add('e', 'after');
    const got = (await take(sub, 2, 10_000)) as SinkEvent[];
    expect(got.map((e) => [e.id, e.deliveryCount])).toEqual([
      [held.id, 1],
      [after, 1],
    ]);
    expect(
      lines.some(
        (l) => l.level === 'warn' && l.msg === 'consumer group missing (NOGROUP): recreated at 0, events may be redelivered',
      ),
    ).toBe(true);
    expect(sink.counters.lost).toBe(0);
  });

  it('a group destroyed on a trimmed stream whose events were all acked: recreated at 0, nothing reported lost', async (ctx) => {
    const { c, lines, sink } = await setup(ctx, kind);
    const s = new Stream(uniqueName('trimmed'), c.redis, { maxLen: 10 });
    const k = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(async () => {
      await k.close();
      await s.destroy();
    });
    void sink;
    const sub = k.subscribe();
    for (let i = 0; i < 300; i++) {
      await s.add('e', `${i}`);
      const [ev] = (await take(sub, 1)) as [SinkEvent];
      await ev.ack();
    }
    expect(k.counters.lost).toBe(0);
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const last = await s.add('e', 'last');
    await waitFor(
      async () => {
        const [ev] = (await take(sub, 1, 2000)) as [SinkEvent];
        await ev.ack();
        return ev.id === last;
      },
      { timeout: 10_000, what: 'the last event' },
    );
    // A loss check runs within a quarter grace period: nothing may be counted meanwhile.
    await stays(() => k.counters.lost === 0, 600, 'nothing reported lost');
    void lines;
  });

  it('Redis restarted without persistence: once a producer recreates the stream the sink recreates its group at 0 and says so in the log', async (ctx) => {
    const { server, lines, s, sink } = await setup(ctx, kind);
    const sub = sink.subscribe();
    await s.add('e', 'held');
    await take(sub, 1);
    await server.restart();
    const after = await waitFor(() => s.add('e', 'after'), { timeout: 10_000, what: 'an add after the restart' });
    const [next] = (await take(sub, 1, 10_000)) as [SinkEvent];
    expect(next.id).toBe(after);
    await waitFor(() => lines.some((l) => l.level === 'warn' && /recreated at 0/.test(l.msg ?? '')), { what: 'recreated line' });
    await waitFor(() => lines.some((l) => l.level === 'warn' && /how many is unknown/.test(l.msg ?? '')), {
      what: 'an uncounted loss line',
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${lines.map((l) => `${l.level} ${l.msg}`).join('\n')}`);
    });
  });
});
