/**
 * Clocks: Redis's clock stepped while a sink runs (an NTP step on the Redis
 * host, or a failover to a node whose clock differs). Idle times of pending
 * events, nack delays and the ages of sink instances run on Redis's clock, so
 * a step back delays redeliveries by its size; nothing in the library can
 * correct that, but it is said (RedisClockWatch), and nothing is lost. After a
 * step forward, an event taken from a healthy consumer comes as a redelivery.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, recordingLogger, uniqueName, waitFor } from './support/clients.js';
import { SkewedRedis, skewShim, skewSkipReason, spawnConsumer } from './support/clockSkew.js';
import { Consumer } from './support/consumerProcesses.js';

const ok = skewShim() !== undefined;
if (!ok) console.warn(skewSkipReason);
const GRACE = 500;

function jumps(lines: ReturnType<typeof recordingLogger>['lines']): number[] {
  return lines
    .filter((l) => l.level === 'warn' && /^Redis's clock/.test(l.msg ?? ''))
    .map((l) => (l.obj as { jumpMs: number }).jumpMs);
}

describe.skipIf(!ok).concurrent.each(CLIENT_KINDS)('Redis clock stepped while running (%s)', (kind) => {
  async function setup(ctx: TestContext) {
    const srv = await SkewedRedis.start(0);
    ctx.onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    ctx.onTestFinished(() => c.close());
    return { srv, c };
  }

  it("stepped back 3 s: said, with a logger and without, and a killed consumer's events still come back", async (ctx) => {
    const { srv, c } = await setup(ctx);
    const name = uniqueName('stk');
    const rec = recordingLogger();
    const stream = new Stream(name, c.redis, { maxLen: 0, logger: rec.logger });
    const child = new Consumer(spawnConsumer({ url: srv.url, kind, stream: name, sink: 'sink', graceMs: GRACE, ackDelayMs: -1 }));
    ctx.onTestFinished(() => child.kill('SIGKILL'));
    await waitFor(() => child.consumer !== undefined || !child.alive(), { timeout: 15_000, what: 'child ready' });
    for (let i = 0; i < 3; i++) await stream.add('e', `p${i}`);
    await waitFor(() => child.received.length >= 3, { timeout: 10_000, what: 'child got 3' });
    const sink = await stream.newSink('sink', { ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    // Another sink, on a stream without a logger: a process warning.
    const quiet = new Stream(uniqueName('stq'), c.redis, { maxLen: 0 });
    const quietName = uniqueName('qsink');
    const warned: Array<Error & { code?: string }> = [];
    const listener = (w: Error): void => {
      if (w.name === 'PulseWarning' && w.message.includes(`sink ${quietName}`)) warned.push(w);
    };
    process.on('warning', listener);
    ctx.onTestFinished(() => void process.off('warning', listener));
    const other = await quiet.newSink(quietName, { ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => other.close());
    // Both have made a liveness call: the step comes between two.
    await waitFor(async () => Number(await c.cmd('EXISTS', `{pulse:sink:${quietName}}:instances`)) === 1, { what: 'liveness' });
    await child.kill('SIGKILL');
    srv.setSkew(-3000);
    const r = await nextWithin(sink[Symbol.asyncIterator](), 20_000);
    if (r === 'timeout' || r.done) throw new Error('never redelivered');
    await waitFor(() => jumps(rec.lines).length > 0 && warned.length > 0, { what: 'the step said' });
    const [jump] = jumps(rec.lines);
    expect(jump).toBeLessThan(-2000);
    expect(jump).toBeGreaterThan(-4500);
    expect(warned[0]?.code).toBe('PULSE_REDIS_CLOCK_JUMPED');
  }, 60_000);

  it('stepped back 10 s: a dedupId repeated after the window (on the server clock) adds anew', async (ctx) => {
    const { srv, c } = await setup(ctx);
    const stream = new Stream(uniqueName('stw'), c.redis, { maxLen: 0, dedupWindowMs: 2000 });
    await stream.add('e', 'before');
    srv.setSkew(-10_000);
    await waitFor(async () => (await srv.time()) < Date.now() - 9000, { what: 'step taken' });
    const first = await stream.add('e', 'x', { dedupId: 'X' });
    const s0 = await srv.time();
    // 2.5 s later on the server's clock (no further step): the 2 s window is over.
    await waitFor(async () => (await srv.time()) - s0 > 2500, { timeout: 10_000, what: 'window over on the server clock' });
    const second = await stream.add('e', 'x2', { dedupId: 'X' });
    expect(second).not.toBe(first);
  }, 30_000);

  it('stepped forward 1 h: said, and an event a live consumer is handling comes again, if at all, as a redelivery', async (ctx) => {
    const { srv, c } = await setup(ctx);
    const rec = recordingLogger();
    const stream = new Stream(uniqueName('stf'), c.redis, { maxLen: 0, logger: rec.logger });
    const a = await stream.newSink('sink', { ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => a.close());
    const b = await stream.newSink('sink', { ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => b.close());
    const seen: Array<{ by: string; ev: SinkEvent }> = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const handler = (by: string) => async (ev: SinkEvent) => {
      seen.push({ by, ev });
      await gate;
    };
    const pa = a.process(handler('a'));
    const pb = b.process(handler('b'));
    const id = await stream.add('e', 'long');
    await waitFor(() => seen.length >= 1, { what: 'first delivery' });
    srv.setSkew(3_600_000);
    // Healthy consumers, a handler running for less than 6 grace periods.
    const t0 = performance.now();
    await waitFor(() => seen.length >= 2 || performance.now() - t0 > 6 * GRACE, { timeout: 20_000 });
    release();
    await a.close();
    await b.close();
    await Promise.all([pa, pb]);
    // A jump is a fault: until the holder's next touch its event looks an hour idle and its instance
    // an hour quiet, so another may take it (seen under load); it then comes as a redelivery, never
    // as a second first delivery, and never more than once more.
    expect(seen[0]?.ev.id).toBe(id);
    expect(seen.map((s) => s.ev.deliveryCount)).toEqual([1, 2].slice(0, seen.length));
    expect(seen.length).toBeLessThanOrEqual(2);
    expect(jumps(rec.lines).some((j) => j > 3_500_000)).toBe(true);
  }, 60_000);
});
