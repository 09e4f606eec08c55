/**
 * Outside review AH (defect 1; line numbers as of commit 41e36ff): `nack({ delayMs })` across a takeover. API.md: "redelivers not
 * before `delayMs` ... and not much later (within the sink's reclaim
 * interval)"; README: "the due time is kept in Redis, so every instance
 * honours it". The instance that nacked closes (a rolling deploy) just
 * after the nack: the other live instance must redeliver the event once its
 * delay has run, within a reclaim interval (a sweep: half a grace period),
 * not when the closed instance is finally seen stale.
 * Failed before the fix: both clients, every run (redelivered 2987-2999 ms after the nack, grace 3000).
 * Fixed: close() posts the streams where it leaves events pending to the sink-wide work set, which the
 * live instances sweep at their next beat (sinkLeave.ts `postWork`).
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, uniqueName, waitFor, within } from './support/clients.js';
import { serverForTest } from './support/ownServer.js';

describe.each(CLIENT_KINDS)('nack delay across a takeover (%s)', (kind) => {
  it('nack({ delayMs: 300 }) then close(): the other instance redelivers it within delay + a reclaim interval', async (ctx) => {
    const env = await serverForTest(ctx, kind);
    const grace = 3000;
    const delayMs = 300;
    const stream = new Stream(uniqueName('revahn'), env.c.redis);
    const a = await stream.newSink('sink', { ackGracePeriodMs: grace });
    env.defer(() => within(a.close(), 10_000, 'close a'));
    const b = await stream.newSink('sink', { ackGracePeriodMs: grace });
    env.defer(() => within(b.close(), 10_000, 'close b'));
    // b waits for events, idle; a takes the one event.
    const gotB: Array<{ ev: SinkEvent; at: number }> = [];
    const ac = new AbortController();
    let nackedAt = 0;
    const subA = a.subscribe();
    const id = await stream.add('e', 'x');
    const itA = subA[Symbol.asyncIterator]();
    const first = await within(itA.next(), 5000, 'a gets the event');
    // Only now b subscribes: the event is a's.
    const runB = b
      .process(
        async (ev) => {
          gotB.push({ ev, at: performance.now() });
        },
        { signal: ac.signal },
      )
      .catch(() => {});
    const ev = first.value as SinkEvent;
    expect(ev.id).toBe(id);
    await ev.nack({ delayMs });
    nackedAt = performance.now();
    await within(a.close(), 10_000, 'close a');
    await waitFor(() => gotB.length > 0, { timeout: 4 * grace, what: 'b redelivers the nacked event' }).catch(() => {});
    ac.abort();
    await runB;
    const after = gotB.length > 0 ? Math.round((gotB[0] as { at: number }).at - nackedAt) : -1;
    // Not before the delay; within the delay plus a reclaim interval (grace / 2), with 500 ms of slack.
    expect({
      redelivered: gotB.length,
      notBefore: after >= delayMs,
      afterMs: after <= delayMs + grace / 2 + 500 ? 'in time' : after,
    }).toEqual({
      redelivered: 1,
      notBefore: true,
      afterMs: 'in time',
    });
  }, 30_000);
});
