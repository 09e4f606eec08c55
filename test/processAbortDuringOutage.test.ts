/**
 * `process()` aborted (its signal) while Redis is down and a failed
 * handler's nack cannot be sent.
 *
 * Outside review T (the session's own changes): the nack, retried until the
 * sink closes, ran in the handler's slot, and `process()` did not resolve
 * while Redis was down however long the outage: a shutdown written as the
 * README's examples suggest (abort the run, await it, then close the sink)
 * never reached `close()`.
 *
 * Outside review U (the fix of T): stopping the nack at the abort instead
 * dropped it: after a short outage (a restart, a failover), the event came
 * back a grace period later instead of after the retry delay the policy
 * asked for (README: `nack({ delayMs })` "redelivers not before `delayMs`").
 * The run now stops waiting for the nack, which goes on until it lands or the
 * sink closes.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;

/**
 * A `process()` run whose handler fails once Redis is down (killed here),
 * aborted once its nack failed; `delayMs`: the retry delay. Redis is AOF-backed.
 */
async function abortedWhileDown(ctx: TestContext, kind: ClientKind, delayMs?: number) {
  const server = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('abortdown'), c.redis, { logger: logger as Logger });
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
    { signal: ac.signal, ...(delayMs !== undefined && { retry: { delayMs, jitter: 0 } }) },
  );
  run.catch(() => {});
  const id = (await s.add('e', 'x')) as string;
  await waitFor(() => entered, { what: 'the handler running' });
  await server.kill();
  down(); // the handler fails: its nack cannot be sent
  await waitFor(() => lines.some((l) => /nack failed/.test(String(l.msg))), { what: 'the nack failing' });
  ac.abort(); // the service shuts this run down; the sink stays open
  const log = () => lines.map((l) => `${l.level}: ${String(l.msg)}`).join(' | ');
  return { server, c, run, id, delays: `{${s.key}}:sink:g:delays`, log };
}

describe.concurrent.each(CLIENT_KINDS)('process() aborted while Redis is down (%s)', (kind) => {
  it('resolves within a few grace periods though a nack cannot be sent', async (ctx) => {
    const { run, log } = await abortedWhileDown(ctx, kind); // Redis stays down until the test ends
    await within(run, 6 * GRACE, 'process() resolved after its signal aborted, Redis down').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; log: ${log()}`);
    });
  }, 30_000);

  it('the retry nack keeps its delay once Redis is back, the sink still open', async (ctx) => {
    const DELAY = 60_000;
    const { server, c, run, id, delays, log } = await abortedWhileDown(ctx, kind, DELAY);
    await server.restart(); // a short outage: Redis back, with its data (AOF)
    await within(run, 10 * GRACE, 'process() resolved');
    // The nack the retry policy asked for lands: the event is due in about a minute.
    await waitFor(async () => (await c.cmd('ZSCORE', delays, id)) !== null, {
      timeout: 10 * GRACE,
      what: 'the nack delay in the delays set',
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; log: ${log()}`);
    });
    expect(Number(await c.cmd('ZSCORE', delays, id))).toBeGreaterThan(Date.now() + DELAY / 2);
  }, 60_000);
});
