/**
 * Outside review U (last five commits): a retry nack that Redis could not take when the run's signal
 * aborted is dropped, and its event comes back after the grace period instead of its delay,
 * although the sink stays open and Redis is back a moment later.
 *
 * Mechanism: b6061ce made `HandlerRun.#nack` (src/internal/process.ts:300-321) retry through
 * `untilAnswered` with `stopping` = the sink's `closed` OR the run's `signal`
 * (process.ts:68). Once the signal aborts, the next failed attempt returns 'stopped'
 * (untilAnswered.ts:38) and the nack is given up with a warn (process.ts:318-321). Before, it was
 * retried until the sink closed, so a nack that failed during a short outage (a restart, a
 * failover) still landed: its due time went to the delays set and the event was redelivered
 * no sooner than asked. Now the event stays pending with no delay: any instance's claim
 * redelivers it one grace period later. README promises `nack({ delayMs })` "redelivers not
 * before `delayMs`, also when it is longer than the grace" (README.md:195), and a retry nack
 * that fails "is sent again with backoff until it lands or its delay is over" (README.md:515);
 * here it is sent neither until it lands nor until its delay is over. Aborting `process()` is
 * the README's shutdown path, and it is when a shutdown coincides with a Redis blip that this
 * happens; the sink, open, could keep sending it without holding the run's end.
 * (If Redis comes back from a rollback, the event is also not counted lost: nothing retries.)
 *
 * What the user sees: an event backed off for a minute (a rate-limited or down downstream) is
 * handled again about a second later by the next run or instance; one warn line.
 *
 * Fix: on the run's signal, stop holding the handler slot and the run's end, but hand the
 * nack to a sink-level retry that runs until it lands or the sink closes (or its delay passed).
 */
import { describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;
const DELAY = 60_000;

describe.concurrent.each(CLIENT_KINDS)('retry nack of an aborted process() during a short outage (%s)', (kind) => {
  it('keeps its delay once Redis is back, the sink still open', async (ctx) => {
    const server = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('revUnack'), c.redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const delays = `{${s.key}}:sink:g:delays`;
    const ac = new AbortController();
    let down!: () => void;
    const isDown = new Promise<void>((r) => {
      down = r;
    });
    let entered = false;
    const run = sink.process(
      async () => {
        entered = true;
        await isDown;
        throw new Error('downstream rate-limited us');
      },
      { signal: ac.signal, retry: { delayMs: DELAY, jitter: 0 } },
    );
    run.catch(() => {});
    const id = (await s.add('e', 'x')) as string;
    await waitFor(() => entered, { what: 'the handler running' });
    await server.kill(); // a short outage: a restart, a failover
    down(); // the handler fails: nacked with the 60 s retry delay, which Redis cannot take yet
    await waitFor(() => lines.some((l) => /nack failed/.test(String(l.msg))), { what: 'the nack failing' });
    ac.abort(); // the service shuts this run down; the sink stays open
    await server.restart(); // Redis back, with its data (AOF)
    await within(run, 10 * GRACE, 'process() resolved');
    // The nack the user's retry policy asked for lands: the event is due in about a minute.
    await waitFor(async () => (await c.cmd('ZSCORE', delays, id)) !== null, {
      timeout: 10 * GRACE,
      what: 'the nack delay in the delays set',
    }).catch((err: unknown) => {
      const log = lines.map((l) => `${l.level}: ${String(l.msg)}`).join(' | ');
      throw new Error(`${(err as Error).message}; log: ${log}`);
    });
    expect(Number(await c.cmd('ZSCORE', delays, id))).toBeGreaterThan(Date.now() + DELAY / 2);
  }, 60_000);
});
