/**
 * Outside review AH (defect 2; line numbers as of commit 41e36ff): a dead consumer left events pending on two streams of one
 * sink: 20k on one, 5 on the other. README: "A crashed or frozen consumer's
 * events go to a live one within about 2 x the grace period; when every live
 * consumer's buffer is at its bound, they wait until a handler frees room".
 * The takeover of the big list must not hold back the other stream's
 * orphans until it is over.
 * Failed before the fix: both clients, every run (the 5 had not come after 6 s; with 8k on the big
 * stream they came after all 8k, about 10 grace periods).
 * Fixed: the streams waiting for claims take turns (`SinkMaintenance.#claimWanted` starts each
 * round with the next one).
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, uniqueName, waitFor, within } from './support/clients.js';
import { ORPHANS } from './support/orphans.js';
import { serverForTest } from './support/ownServer.js';

describe.each(CLIENT_KINDS)('takeover over two streams (%s)', (kind) => {
  it('20k orphans on one stream, 5 on another: the 5 come within about 2 grace periods, not after the 20k', async (ctx) => {
    const env = await serverForTest(ctx, kind);
    const grace = 1000;
    const big = new Stream(uniqueName('revahbig'), env.c.redis);
    const small = new Stream(uniqueName('revahsmall'), env.c.redis);
    await env.c.cmd('EVAL', ORPHANS, 1, big.key, 20_000, 'b');
    await env.c.cmd('EVAL', ORPHANS, 1, small.key, 5, 's');
    const sink = await big.newSink('sink', { ackGracePeriodMs: grace, bufferSize: 100, maxPolled: 100 });
    env.defer(() => within(sink.close(), 10_000, 'close'));
    await sink.addStream(small);
    const started = performance.now();
    let bigDone = 0;
    let smallAt = 0;
    let bigAtSmall = -1;
    let smallDone = 0;
    const ac = new AbortController();
    const run = sink
      .process(
        async (ev: SinkEvent) => {
          if (ev.streamName === small.name) {
            smallDone++;
            if (smallDone === 5) {
              smallAt = performance.now() - started;
              bigAtSmall = bigDone;
            }
          } else bigDone++;
          // A handler of about 0.5 ms: 20k take some 10 s.
          await new Promise((r) => setTimeout(r, 0));
        },
        { concurrency: 1, signal: ac.signal },
      )
      .catch(() => {});
    await waitFor(() => smallDone === 5 || performance.now() - started > 6 * grace, {
      timeout: 10 * grace,
      what: 'small stream done',
    });
    ac.abort();
    await run;
    // The big stream's takeover was under way (its events handled) when the small one's came.
    expect(bigDone).toBeGreaterThan(0);
    // Within 3 grace periods (the promise is about 2), not once the 20k are over (some 20 s).
    expect({
      smallDone,
      inTime: smallAt > 0 && smallAt < 3 * grace,
      bigHandledBeforeTheSmallOnes: bigAtSmall,
      bigHandledInAll: bigDone,
    }).toMatchObject({
      smallDone: 5,
      inTime: true,
    });
  }, 40_000);
});
