/**
 * Outside review T (the session's own changes): an idle sink with no subscriber whose streams
 * are gone (destroyed, deleted) now polls every one of them twice a second,
 * for good: ~400 Redis commands/s for 100 streams where it sent ~7.
 *
 * Mechanism: 4899dc7 made the sweep run a missing stream's check when no
 * subscription reads (`recoverUnread`, src/internal/sinkHosts.ts:104-121,
 * called from sweepScript.ts:262). For a key that is gone the check sets
 * `s.ready = false` (sinkTrimCheck.ts:127-130), and from then on the
 * maintenance loop runs `#awaitStream` for it every `awaitMs` (grace/4, at
 * most 500 ms: sinkMaintenance.ts:106, 204-206): a `recreateGroup` script
 * (EVALSHA + EXISTS, 2 commands) per gone stream, until a producer creates
 * the key again, which for a destroyed stream may be never. Before, a sink
 * with no subscriber left such a stream `ready` and only its sweeps looked
 * at it (the backstop: once per max(10 grace periods, 10 s per stream)).
 * The sweeps reach every stream sooner or later (the backstop; here sooner:
 * a lost liveness record sweeps every stream, as a crash of another
 * instance or a reconnect does). Measured (100 destroyed streams, no
 * subscriber, 8 s after the sweeps): before ~7 commands/s in all, now ~406/s
 * (4 per gone stream per second: 4000/s for a sink over 1000 of them, at
 * any grace period). A subscribed sink already paid that (not today's
 * change); today's change extends it to every instance with no subscription
 * open (between `process()` runs, a `for await` loop left).
 *
 * What the user sees: Redis command rate and CPU up by two orders of
 * magnitude under idle sinks once streams they read are destroyed.
 */
import { describe, expect, it } from 'vitest';
import { type Logger, type Sink, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const N = 100;
/** Sweeps every second: the sweeps reach every stream within seconds (with the default 20 s, within minutes). */
const GRACE = 2000;

describe.concurrent.each(CLIENT_KINDS)('idle cost of destroyed streams under a sink with no subscriber (%s)', (kind) => {
  it(`a sink with no subscriber over ${N} destroyed streams stays cheap (grace period 2 s)`, async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger } = recordingLogger();
    const streams = Array.from({ length: N }, () => new Stream(uniqueName('revTgone'), c.redis, { logger: logger as Logger }));
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const sink: Sink = await first.newSink('g', { ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    for (const s of rest) await sink.addStream(s);
    const failedXpending = async () =>
      Number(/cmdstat_xpending:.*failed_calls=(\d+)/.exec(String(await c.cmd('INFO', 'commandstats')))?.[1] ?? 0);
    // Counted from before the destroys: a sweep between them and the count (a loaded clean-clone CI
    // run) found some gone already, and those are not swept again.
    const swept = await failedXpending();
    // No subscriber; the streams are destroyed (by another service, or Go's Destroy).
    for (const s of streams) await s.destroy();
    expect(Number(await c.cmd('EXISTS', ...streams.map((s) => s.key)))).toBe(0);
    // The sweeps look at every stream now (after a lost liveness record, a crash of another
    // instance, a reconnect; the backstop reaches each within max(10 grace periods, 10 s per stream)).
    await c.cmd('DEL', '{pulse:sink:g}:instances');
    // Every gone stream was swept (a failing XPENDING each), in both versions; then the sweeps stop.
    await waitFor(async () => (await failedXpending()) >= swept + N, {
      timeout: 20_000,
      interval: 100,
      what: 'the gone streams swept',
    });
    let last = -1;
    await waitFor(
      async () => {
        const v = await failedXpending();
        const same = v === last;
        last = v;
        return same;
      },
      { timeout: 30_000, interval: 2000, what: 'the sweeps of the gone streams over' },
    );
    const commands = async () => Number(/total_commands_processed:(\d+)/.exec(String(await c.cmd('INFO', 'stats')))?.[1]);
    const before = await commands();
    const t0 = performance.now();
    // Four sweep periods (1 s): the defect's ~400/s would count ~1,600 commands here against the
    // bound's 100, the ~7/s of a sink without it ~28; a window of 8 s separated them no better.
    await new Promise((r) => setTimeout(r, 4000));
    const perSecond = ((await commands()) - before - 1) / ((performance.now() - t0) / 1000);
    if (process.env.PULSE_IDLE_PRINT) console.log(`revT idle ${kind}: ${perSecond.toFixed(1)} commands/s`);
    // Before the change: ~7/s (the liveness beats, the sweeps); now ~400/s (2 commands per gone stream every 500 ms).
    expect(perSecond, `${perSecond.toFixed(1)} commands/s`).toBeLessThanOrEqual(N / 4);
  }, 60_000);
});
