/**
 * A huge `ackGracePeriodMs` (`Number.MAX_SAFE_INTEGER` as "never redeliver")
 * overflowed the timers derived from it: Node.js fires a timer of more than
 * 2^31-1 ms after 1 ms, so `process()` polled Redis about a thousand times a
 * second. Values above 2^31-1 ms are rejected with `InvalidArgumentError`;
 * at the bound, a sink and `process()` stay quiet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { MAX_GRACE_MS } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.each(CLIENT_KINDS)('ack grace period bound (%s)', (kind) => {
  let priv: RedisServer;
  let c: TestClient;
  beforeAll(async () => {
    priv = await RedisServer.start();
    c = await connect(kind, priv.url);
  });
  afterAll(async () => {
    await c.close();
    await priv.stop();
  });

  /** Commands the private server ran, in all, leaving out the INFO calls that read them. */
  async function commandCalls(): Promise<number> {
    const info = String(await c.cmd('INFO', 'commandstats'));
    let n = 0;
    for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) if (m[1] !== 'info') n += Number(m[2]);
    return n;
  }

  it('rejects a grace period above 2^31-1 ms with InvalidArgumentError', async () => {
    const stream = new Stream(uniqueName('grace'), c.redis);
    for (const ackGracePeriodMs of [Number.MAX_SAFE_INTEGER, 2 ** 31, MAX_GRACE_MS + 1]) {
      const err = await stream.newSink('s', { ackGracePeriodMs }).then(
        async (sink) => {
          await sink.close();
          return new Error(`accepted ${ackGracePeriodMs}`);
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toContain(String(MAX_GRACE_MS));
    }
    await stream.destroy();
  });

  it('at the bound, process() with a long handler sends few commands and no timer overflows', async () => {
    expect(MAX_GRACE_MS).toBe(2 ** 31 - 1);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    const stream = new Stream(uniqueName('grace'), c.redis);
    const sink = await stream.newSink('s', { ackGracePeriodMs: MAX_GRACE_MS });
    const ac = new AbortController();
    let release: (() => void) | undefined;
    const running: SinkEvent[] = [];
    try {
      const done = sink.process(
        async (ev) => {
          running.push(ev);
          await new Promise<void>((r) => (release = r));
        },
        { signal: ac.signal },
      );
      await stream.add('e', 'x');
      await waitFor(() => running.length === 1, { what: 'the handler to start' });
      // One second with a handler running: keep-alive, reclaim and the
      // blocking read cost a few commands, a 1 ms timer about a thousand.
      const before = await commandCalls();
      await new Promise((r) => setTimeout(r, 1000));
      const sent = (await commandCalls()) - before;
      expect(sent).toBeLessThan(100);
      release?.();
      ac.abort();
      await within(done, 5000, 'process() after abort');
      expect(sink.counters.acked).toBe(1);
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
      await sink.close();
      await stream.destroy();
    }
  });
});
