/**
 * Clocks: the application host's wall clock stepped back by NTP while a sink
 * runs (Redis' clock untouched). Its liveness beats, claims of a dead peer's
 * events, due retries and stalled-loop checks run on the monotonic clock
 * (internal/clock.ts); on Date.now() deadlines they waited out the step.
 * Children run with the LD_PRELOAD clock shim (monotonic clocks untouched,
 * as with a real NTP step).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, uniqueName, waitFor } from './support/clients.js';
import { skewFile, skewShim, skewSkipReason, spawnChild } from './support/clockSkew.js';
import { Consumer } from './support/consumerProcesses.js';
import { RedisServer } from './support/redisServer.js';

const ok = skewShim() !== undefined;
if (!ok) console.warn(skewSkipReason);
const GRACE = 500;
/**
 * The delay of the retry test's nack: short next to the step (with deadlines on Date.now() the
 * retry waited 30 s), long enough that the step surely comes before the retry is due.
 */
const RETRY_MS = 1000;
/** The step back of the skewed host's clock. */
const STEP = -30_000;

describe.skipIf(!ok).concurrent.each(CLIENT_KINDS)('application clock stepped back 30 s (%s)', (kind) => {
  async function setup(ctx: TestContext) {
    const onTestFinished = ctx.onTestFinished;
    const srv = await RedisServer.start();
    onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    onTestFinished(() => c.close());
    const name = uniqueName('app');
    const clock = skewFile(0);
    onTestFinished(() => clock.remove());
    const children: Consumer[] = [];
    onTestFinished(async () => {
      await Promise.all(children.map((ch) => ch.kill('SIGKILL')));
    });
    const start = async (mode: 'ack' | 'retry' | 'hold' | 'stuck', skewed: boolean) => {
      const ch = new Consumer(
        spawnChild(
          { url: srv.url, kind, stream: name, sink: 'sink', graceMs: GRACE, mode, retryMs: RETRY_MS },
          skewed ? clock.file : undefined,
        ),
      );
      children.push(ch);
      await waitFor(() => ch.consumer !== undefined || !ch.alive(), { timeout: 15_000, what: 'child ready' });
      if (!ch.consumer) throw new Error(`child failed: ${ch.stderr.join('')}`);
      return ch;
    };
    return { srv, c, stream: new Stream(name, c.redis, { maxLen: 0 }), clock, start };
  }

  it("a healthy instance keeps beating (liveness) and claims a killed peer's events within 2 x grace", async (ctx) => {
    const { c, stream, clock, start } = await setup(ctx);
    const holder = await start('hold', false);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await stream.add('e', `p${i}`));
    await waitFor(() => holder.received.length >= 3, { timeout: 10_000, what: 'holder got 3' });
    const b = await start('ack', true);
    const beat = async () => Number(await c.cmd('ZSCORE', '{pulse:sink:sink}:instances', b.consumer as string));
    await waitFor(async () => (await beat()) > 0, { timeout: 10_000, what: 'b beats' });
    // Settled: a beat after its first one, so its loops run, their next deadlines set before the step.
    const firstBeat = await beat();
    await waitFor(async () => (await beat()) > firstBeat, { timeout: 10_000, what: 'b settled (beats again)' });
    clock.set(STEP); // NTP steps b's host back 30 s
    await holder.kill('SIGKILL');
    const killedAt = performance.now();
    const beatBefore = await beat();
    await waitFor(() => b.received.length >= 3 || performance.now() - killedAt > 4 * GRACE + 3000, { timeout: 90_000 });
    const took = performance.now() - killedAt;
    expect(b.received.length, `b got the killed peer's events only after ${Math.round(took)} ms`).toBe(3);
    // Liveness: a beat every grace / 2; a healthy instance silent for 2 grace periods is seen stale by its peers.
    let beatAfter = beatBefore;
    await waitFor(
      async () => {
        beatAfter = await beat();
        return beatAfter > beatBefore || performance.now() - killedAt > 4 * GRACE + 3000;
      },
      { timeout: 90_000 },
    );
    expect(beatAfter - beatBefore, 'liveness beats of b (server ms advanced) in the 5 s after the step').toBeGreaterThan(0);
  }, 90_000);

  it('a retry (nack with a 1 s delay) comes back after about 1 s', async (ctx) => {
    const { c, stream, clock, start } = await setup(ctx);
    const r = await start('retry', true);
    const id = await stream.add('e', 'x');
    await waitFor(() => r.received.length >= 1, { timeout: 10_000, what: 'first delivery' });
    const t0 = performance.now();
    // The handler threw: its nack is answered once the event's due time is in the sink's delays
    // set, well before the retry is due.
    await waitFor(async () => ((await c.cmd('ZSCORE', sinkKeys(stream.name, 'sink').delays, id)) ?? null) !== null, {
      what: 'nack done',
    });
    clock.set(STEP);
    await waitFor(() => r.received.length >= 2 || performance.now() - t0 > RETRY_MS + GRACE + 3000, { timeout: 90_000 });
    const took = performance.now() - t0;
    expect(r.received.length, `redelivered only after ${Math.round(took)} ms`).toBe(2);
  }, 90_000);

  it('a for await loop stuck in its body gives its buffered events back after about the grace period', async (ctx) => {
    const { c, stream, clock, start } = await setup(ctx);
    const stuck = await start('stuck', true);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await stream.add('e', `p${i}`));
    await waitFor(() => stuck.received.length >= 1, { timeout: 10_000, what: 'stuck loop took one' });
    // The other four are in its buffer (pending for it).
    await waitFor(async () => Number(((await c.cmd('XPENDING', `pulse:stream:${stream.name}`, 'sink')) as unknown[])[0]) === 5, {
      what: 'five pending',
    });
    clock.set(STEP);
    const t0 = performance.now();
    const other = await stream.newSink('sink', { ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => other.close());
    const got: string[] = [];
    const done = other.process(async (ev) => {
      got.push(ev.id);
    });
    await waitFor(() => got.length >= 4 || performance.now() - t0 > 4 * GRACE + 3000, { timeout: 90_000 });
    const took = performance.now() - t0;
    await other.close();
    await done;
    // The event its body is stuck on comes too (a for await loop does not keep it in progress).
    expect(
      got.length >= 4 && ids.slice(1).every((id) => got.includes(id)),
      `the stuck loop's 4 buffered events reached the other instance only after ${Math.round(took)} ms`,
    ).toBe(true);
  }, 90_000);
});
