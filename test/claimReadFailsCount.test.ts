/**
 * Outside review AA (defect 2; line numbers as of commit 1b263da). Since bd42e02 a claim raises the delivery counts in its script
 * (XCLAIM JUSTID RETRYCOUNT) and reads the entries in a second round trip.
 * When that read fails (the control connection drops between the claim's
 * reply and the XRANGE), the sink knows exactly which events it claimed and
 * with which counts, yet leaves them pending with the raised count: no code
 * saw them, but the claim counts toward maxDeliveries. With maxDeliveries 2,
 * events a handler saw once (the crashed consumer's delivery) are
 * dead-lettered without this sink ever handing them out. Events read but
 * never handed out are promised to keep the count they had before (README,
 * giveBack.ts).
 *
 * Failed before the fix: 5 of 5 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: the read of claimed entries is tried again for up to half a grace period (sinkClaims.ts `#read`): after a dropped connection they are handed out with the count the claim set. If it fails for longer, they still come back with their count raised (not given back: the connection that would give them back is the one failing).
 */
import { describe, expect, it } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { intercepted, orphansThen } from './support/controlIntercept.js';

const GRACE = 1000;

describe.each(CLIENT_KINDS)('claim whose XRANGE fails, maxDeliveries 2 (%s)', (kind) => {
  it('events seen once are handed out, not dead-lettered for a claim no code saw', async (ctx) => {
    const x = await intercepted(ctx, kind);
    const { logger } = recordingLogger();
    const s = new Stream(uniqueName('claimread-count'), x.redis, { logger: logger as Logger, maxLen: 0 });
    // Delivered once to a consumer that crashed; the connection drops before the claim's read.
    const { fired } = await orphansThen(x, s, () => x.killControl());
    const sink = await s.newSink('g', { ackGracePeriodMs: GRACE, blockMs: 100, maxDeliveries: 2 });
    const got: SinkEvent[] = [];
    const done = collect(sink.subscribe(), got, true);
    try {
      await waitFor(() => fired(), { timeout: 5000, what: 'the claim read' });
      await waitFor(() => got.length === 3 || sink.counters.deadLettered > 0, {
        timeout: 8 * GRACE,
        what: 'the events handed out or dead-lettered',
      });
      expect({ delivered: got.length, deadLettered: sink.counters.deadLettered }).toEqual({ delivered: 3, deadLettered: 0 });
      expect(got.map((e) => e.deliveryCount)).toEqual([2, 2, 2]);
    } finally {
      await within(sink.close(), 10_000, 'close');
      await done.catch(() => {});
    }
  }, 30_000);
});
