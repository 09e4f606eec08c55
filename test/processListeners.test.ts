/**
 * An outside trial's `sink.process(handler, { concurrency: 10, signal })` with failing handlers
 * printed `MaxListenersExceededWarning: ... 11 abort listeners added to [AbortSignal]`: each slot
 * whose handler failed waited for its nack (and dead letter) on the caller's signal and on the
 * sink's close signal, one listener each, removed after: many at once by design, no leak, yet a
 * process warning the application saw. Now a run's waits listen on a signal of its own (one
 * listener on the caller's), and the library's shared signals have no listener limit.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { readDeadLetters } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, waitFor } from './support/clients.js';
import { fill, sinkFixture } from './support/sinkFixture.js';

describe.concurrent.each(CLIENT_KINDS)('process() with every slot failing at once (%s)', (kind) => {
  it('no listener-leak warning; the caller signal holds one listener of the run, none after it', async (ctx) => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    ctx.onTestFinished(() => {
      process.off('warning', onWarning);
    });
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const f = sinkFixture(ctx, c, 'proclisten');
    const s = f.stream();
    await fill(s, 36, 'e');
    const sink = await f.sink(s, { maxDeliveries: 2, ackGracePeriodMs: 1000 });
    const ac = new AbortController();
    let calls = 0;
    let most = 0;
    const run = sink.process(
      async () => {
        calls++;
        most = Math.max(most, getEventListeners(ac.signal, 'abort').length);
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('fails every time');
      },
      { concurrency: 12, signal: ac.signal, retry: { delayMs: 50 } },
    );
    // Every event failed twice: dead-lettered at its second failure (maxDeliveries 2).
    await waitFor(async () => (await readDeadLetters(s)).length >= 36, { timeout: 20_000, what: 'all dead-lettered' });
    ac.abort();
    await run;
    expect({ calls, warnings, most: most <= 2, after: getEventListeners(ac.signal, 'abort').length }).toEqual({
      calls: 72,
      warnings: [],
      most: true,
      after: 0,
    });
  }, 30_000);
});
