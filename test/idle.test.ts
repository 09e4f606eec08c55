/**
 * Idle cost (issue 20): an idle sink instance sends Redis a number of
 * commands that is a small constant per stream and grace period, not a
 * script call per stream and task every reclaim interval. Counted with the
 * server's `total_commands_processed` on a private redis-server (commands run
 * by scripts count one each), with both clients.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Sink, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, readBlocked, take, uniqueName, waitFor, within } from './support/clients.js';
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
    /**
     * Resolves once the sink's next sweep is over: a command other than a blocking read (and this
     * INFO) counted, then none for 300 ms.
     */
    async sweepDone(): Promise<void> {
      const background = async () => {
        let sum = 0;
        for (const [name, n] of await this.calls()) if (name !== 'info' && name !== 'xreadgroup') sum += n;
        return sum;
      };
      const start = await background();
      await waitFor(async () => (await background()) > start, { timeout: 15_000, interval: 50, what: 'a sweep' });
      let last = await background();
      let quietSince = performance.now();
      await waitFor(
        async () => {
          const now = await background();
          if (now !== last) [last, quietSince] = [now, performance.now()];
          return performance.now() - quietSince >= 300;
        },
        { timeout: 10_000, interval: 50, what: 'the sweep over' },
      );
    },
    /** Calls per command so far: what a failure says the commands were. */
    async calls(): Promise<Map<string, number>> {
      const m = new Map<string, number>();
      for (const [, name, n] of String(await c.cmd('INFO', 'commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+)/g))
        m.set(name as string, Number(n));
      return m;
    },
  };
}

describe.concurrent.each(CLIENT_KINDS)('idle cost (%s)', (kind) => {
  it('an idle sink over 100 or 1000 streams sends at most 2 commands/s (default options)', async (ctx) => {
    // Default options: 20 s grace period (liveness every 10 s), 5 s blocking reads.
    const setups = await Promise.all(
      [100, 1000].map(async (n) => {
        const env = await setup(ctx, kind);
        const streams = Array.from({ length: n }, () => new Stream(uniqueName('idle'), env.c.redis));
        const [first, ...rest] = streams as [Stream, ...Stream[]];
        const sink: Sink = await first.newSink('sink');
        env.defer(() => within(sink.close(), 10_000, 'close'));
        for (const s of rest) await sink.addStream(s);
        sink.subscribe();
        return { env, n, last: streams[streams.length - 1] as Stream };
      }),
    );
    // Past the start: streams just added are swept at once (a few commands each); the last one's
    // lease is taken by that sweep. Each stream also gets a first checked read (a trim check and
    // a read, 20 streams at a time): the reads block only once every stream came back drained.
    // Under load those reads were still going when the window opened (CI: 177 commands/s,
    // XINFO/HSET/XRANGE of 380 trim checks), a start counted as idle cost.
    for (const { env, last } of setups) {
      await waitFor(async () => Number(await env.c.cmd('EXISTS', `{${last.key}}:sink:sink:lease`)) === 1, {
        timeout: 15_000,
        what: 'the start sweep',
      });
      await readBlocked(env.c, 30_000);
    }
    // Each window opens right after a sweep (every 10 s, spaced at least that: the next one is
    // set from the start of the last) and lasts 10.5 s: it holds exactly one sweep and two
    // blocking reads. A window opened anywhere held two sweeps now and then (CI: 2.86/s).
    const measured = await Promise.all(
      setups.map(async ({ env, n }) => {
        await env.sweepDone();
        const before = await env.commands();
        const callsBefore = await env.calls();
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, 10_500));
        const seconds = (performance.now() - t0) / 1000;
        const after = await env.commands();
        const calls = [...(await env.calls())]
          .map(([name, v]) => `${name} ${v - (callsBefore.get(name) ?? 0)}`)
          .filter((x) => !x.endsWith(' 0'));
        // Less the INFO that read the count and the one that read the calls.
        return { n, perSecond: (after - before - 2) / seconds, calls };
      }),
    );
    for (const { n, perSecond, calls } of measured) {
      if (process.env.PULSE_IDLE_PRINT) console.log(`idle ${kind} ${n} streams: ${perSecond.toFixed(2)} commands/s`);
      // Before issue 20's redesign: 45/s over 100 streams, 451/s over 1000 (a sweep of every stream every 10 s).
      expect(perSecond, `${n} streams: ${perSecond.toFixed(2)} commands/s (${calls.join(', ')})`).toBeLessThanOrEqual(2);
      expect(perSecond).toBeGreaterThan(0);
    }
  }, 60_000);

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
