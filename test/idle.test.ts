/**
 * Idle cost (issue 20): an idle sink instance sends Redis a number of
 * commands that is a small constant per stream and grace period, not a
 * script call per stream and task every reclaim interval. Counted with the
 * server's `total_commands_processed` on a private redis-server (commands run
 * by scripts count one each), with both clients.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Sink, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

async function setup(ctx: TestContext, kind: ClientKind) {
  const server = await RedisServer.start();
  const release: Array<() => Promise<unknown>> = [() => server.stop()];
  ctx.onTestFinished(async () => {
    for (const f of release.reverse()) await f().catch(() => {});
  });
  const c = await connect(kind, server.url);
  release.push(() => c.close());
  return {
    c,
    defer(f: () => Promise<unknown>): void {
      release.push(f);
    },
    async commands(): Promise<number> {
      return Number(/total_commands_processed:(\d+)/.exec(String(await c.cmd('INFO', 'stats')))?.[1]);
    },
  };
}

describe.each(CLIENT_KINDS)('idle cost (%s)', (kind) => {
  it('an idle sink over 20 streams sends at most 12 commands per stream and grace period', async (ctx) => {
    const env = await setup(ctx, kind);
    const grace = 1000;
    const streams = Array.from({ length: 20 }, () => new Stream(uniqueName('idle'), env.c.redis));
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    // The read blocks for a grace period: one XREADGROUP per second for all 20 streams.
    const sink: Sink = await first.newSink('sink', { ackGracePeriodMs: grace, blockMs: grace });
    env.defer(() => within(sink.close(), 10_000, 'close'));
    for (const s of rest) await sink.addStream(s);
    const sub = sink.subscribe();
    // Past the start (group creation, first sweep and keep-alive, first reads).
    const start = await env.commands();
    await waitFor(async () => (await env.commands()) > start + 20, { timeout: 5000, what: 'the first sweep' });
    await new Promise((r) => setTimeout(r, grace));
    const before = await env.commands();
    const t0 = performance.now();
    // A window of four grace periods: eight sweeps, give or take one.
    await new Promise((r) => setTimeout(r, 4 * grace));
    const seconds = (performance.now() - t0) / 1000;
    const perSecond = ((await env.commands()) - before - 1) / seconds;
    // Per stream and grace period: two sweeps (lease, pending check) and one
    // keep-alive with cleanup, about 9; the old reclaim loop sent about 20 per
    // stream every 500 ms (some 1,100/s here).
    const budget = (streams.length * 12) / (grace / 1000) + 10;
    if (process.env.PULSE_IDLE_PRINT) console.log(`idle ${kind}: ${perSecond.toFixed(1)} commands/s (budget ${budget})`);
    expect(perSecond, `${perSecond.toFixed(0)} commands/s`).toBeLessThan(budget);
    expect(perSecond).toBeGreaterThan(0);
    await sub.return?.();
  });

  it('sweeps every grace period / 2 do not delay a nack: redelivered when its delay runs out', async (ctx) => {
    const env = await setup(ctx, kind);
    const stream = new Stream(uniqueName('idle-nack'), env.c.redis);
    // Sweeps every 5 s: a nack of 300 ms must not wait for the next one.
    const sink = await stream.newSink('sink', { ackGracePeriodMs: 10_000, blockMs: 100 });
    env.defer(() => within(sink.close(), 10_000, 'close'));
    const sub = sink.subscribe();
    const id = await stream.add('event', 'x');
    const [ev] = await take(sub, 1);
    const t = performance.now();
    await ev?.nack({ delayMs: 300 });
    const [again] = await take(sub, 1, 8000);
    const waited = performance.now() - t;
    expect(again?.id).toBe(id);
    expect(again?.deliveryCount).toBe(2);
    expect(waited).toBeGreaterThanOrEqual(290);
    // The next sweep would come 5 s after the first one.
    expect(waited, `${waited.toFixed(0)} ms`).toBeLessThan(2500);
    await again?.ack();
  });
});
