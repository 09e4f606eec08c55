/**
 * Outside review U (last five commits): a nack that failed, was retried, and was still unanswered when
 * the sink closed is now logged as having succeeded ("nack succeeded after retries", info),
 * next to the warn that says it was not answered.
 *
 * Mechanism: b6061ce moved the retry into `untilAnswered` (src/internal/untilAnswered.ts:31-33):
 * an attempt that resolves is a success, logged at info when it followed failures. The nack's
 * attempt (src/internal/process.ts:304-310) resolves, not rejects, when the sent nack was
 * overtaken by the sink's close (`#untilClosed` returned CLOSED: it only sets `unanswered`),
 * so untilAnswered logs "nack succeeded after retries" for a nack Redis never took, then
 * process.ts:314,321 warns "nack not answered after close". Before (67765fe), the CLOSED path
 * returned before the success line.
 *
 * What the user sees: an info line saying the nack landed (log searches, dashboards counting
 * "succeeded after retries" as recovery) for events that in fact stay pending with no delay
 * and come back after the grace period.
 *
 * Fix: have the nack's attempt report "unanswered" as a distinct outcome (e.g. throw a
 * sentinel untilAnswered returns as why: 'stopped'), so that no success is logged for it.
 */
import { describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;

describe.concurrent.each(CLIENT_KINDS)('a retried nack unanswered at close (%s)', (kind) => {
  it('is not logged as having succeeded', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('revUclose'), c.redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    let down!: () => void;
    const isDown = new Promise<void>((r) => {
      down = r;
    });
    let entered = false;
    const run = sink.process(async () => {
      entered = true;
      await isDown;
      throw new Error('downstream unavailable');
    });
    run.catch(() => {});
    await s.add('e', 'x');
    await waitFor(() => entered, { what: 'the handler running' });
    await server.kill(); // refused: the nack fails and is retried with backoff
    down();
    const failures = () =>
      Math.max(
        0,
        ...lines.filter((l) => l.msg === 'nack failed, retrying').map((l) => Number((l.obj as { failures?: number }).failures)),
      );
    // Retries now ~0.4 s or more apart: Redis comes back silent before the next one.
    await waitFor(() => failures() >= 4, { timeout: 10_000, what: 'the nack retried a few times' });
    await server.restart();
    server.pause(); // back, but not answering: the next attempt stays unanswered
    ctx.onTestFinished(() => server.resume());
    const seen = failures();
    await within(sink.close(), 15_000, 'close');
    await within(run, 5000, 'process() resolved').catch(() => {});
    const log = lines.map((l) => `${l.level}: ${String(l.msg)}`);
    expect(log, `failures before the silent Redis: ${seen}`).toContain(
      'warn: nack not answered after close: the events are redelivered after the grace period, unless Redis lost them in a rollback',
    );
    expect(log).not.toContain('info: nack succeeded after retries');
  }, 60_000);
});
