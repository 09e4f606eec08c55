/**
 * Outside review T (the session's own changes): `process()` whose signal was aborted does not
 * resolve while Redis is down and a nack retries, however long the outage.
 *
 * Mechanism: f679bcd made `HandlerRun.#nack` (src/internal/process.ts:299-337)
 * retry until the sink closes (it used to give up once the retry delay and a
 * grace period were over). The nack runs in the handler's slot: `one()`
 * awaits it (`await nacking`, process.ts:388), `run.start()` waits for a free
 * slot and `run.finish()` for every slot (process.ts:137-146), and neither
 * looks at the run's own signal: only `sink.close()` (the sink's `closed`)
 * ends the retries. So with Redis down, a handler that failed (its own
 * downstream is often down too) and `ac.abort()`, `await run` hangs until
 * Redis comes back; a shutdown written as the README's `process()` examples
 * suggest (abort the run, await it, then close the sink) never reaches
 * `close()`. Before: resolved after max(retry delay, grace period), ~1-2 s here.
 *
 * What the user sees: a service that does not shut down (until killed)
 * while Redis is unreachable, with one "nack failed, retrying" warning.
 */
import { describe, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;

describe.concurrent.each(CLIENT_KINDS)('process() aborted while Redis is down (%s)', (kind) => {
  it('resolves within a few grace periods though a nack cannot be sent', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('revTabort'), c.redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
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
        throw new Error('downstream unavailable');
      },
      { signal: ac.signal },
    );
    run.catch(() => {});
    await s.add('e', 'x');
    await waitFor(() => entered, { what: 'the handler running' });
    await server.kill(); // Redis unreachable from here on (the test ends before it comes back)
    down();
    await waitFor(() => lines.some((l) => /nack failed/.test(String(l.msg))), { what: 'the nack failing' });
    ac.abort(); // shutting down
    await within(run, 6 * GRACE, 'process() resolved after its signal aborted, Redis down').catch((err: unknown) => {
      const log = lines.map((l) => `${l.level}: ${String(l.msg)}`).join(' | ');
      throw new Error(`${(err as Error).message}; log: ${log}`);
    });
  }, 30_000);
});
