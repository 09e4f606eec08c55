/**
 * Outside review AA (defect 3; line numbers as of commit 1b263da). Since bd42e02 a claim reads its entries after the claim
 * script. A `stream.destroy()` that lands between the two: the obituary
 * counts the claimed events (pending for the sink's group when it was
 * destroyed), and the claim path finds them gone from the stream
 * (claimedEntries.ts `gone`) and counts them lost as well
 * (sinkClaims.ts #deliverClaimed): three events, counters.lost 6. The
 * contract: each event ends in exactly one state, the destroy's count being
 * "the count of what it took" (README).
 *
 * Failed before the fix: 5 of 5 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: claimed events found gone are counted as many as the XACK acked (`#claimedGone`): none when the key went, whose report counts them.
 *
 * Both clients at once: each case has a redis-server of its own (`intercepted`).
 */
import { describe, expect, it } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, recordingLogger, stays, uniqueName, waitFor, within } from './support/clients.js';
import { intercepted, orphansThen } from './support/controlIntercept.js';

const GRACE = 1000;

describe.concurrent.each(CLIENT_KINDS)('destroy() between a claim and the read of its entries (%s)', (kind) => {
  it('the claimed events are counted lost once', async (ctx) => {
    const x = await intercepted(ctx, kind);
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('claimread-destroy'), x.redis, { logger: logger as Logger, maxLen: 0 });
    // Ordinary timing, no fault: the destroy is served between the claim and the XRANGE.
    const { fired } = await orphansThen(x, s, () => s.destroy());
    const sink = await s.newSink('g', { ackGracePeriodMs: GRACE, blockMs: 100 });
    const got: SinkEvent[] = [];
    const done = collect(sink.subscribe(), got, 'tolerant');
    try {
      await waitFor(() => fired(), { timeout: 5000, what: 'the claim read' });
      await waitFor(() => sink.counters.lost >= 3, { timeout: 5 * GRACE, what: 'the loss counted' });
      await stays(() => sink.counters.lost <= 3, 3 * GRACE, 'lost counted once').catch(() => {});
      const said = lines
        .filter((l) => l.level === 'warn' && /lost|deleted|gone/.test(l.msg ?? ''))
        .map((l) => [l.msg, (l.obj as { count?: number }).count]);
      expect(sink.counters.lost, `delivered ${got.length}; ${JSON.stringify(said)}`).toBe(3);
    } finally {
      await within(sink.close(), 10_000, 'close');
      await done.catch(() => {});
    }
  }, 30_000);
});
