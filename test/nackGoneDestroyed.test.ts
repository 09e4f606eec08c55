/**
 * A nack of an event deleted from its stream (still pending: it can never be
 * redelivered) counts it lost, then acks it (`SinkHolds.reportGone`). A
 * `stream.destroy()` served between the two: the obituary's count includes
 * the event (pending for the group when it was destroyed), the shape of
 * outside review AA's defect 3 in the claim path (claimReadDestroyed.test.ts).
 * Checked, not a defect: the sink leaves out of the obituary's count what it
 * counted itself (`forgetIds`); each event ends in exactly one state (README).
 * Kept so that it stays so.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, stays, waitFor, within } from './support/clients.js';
import { deletedInHand, intercepted } from './support/controlIntercept.js';

const GRACE = 1000;

describe.each(CLIENT_KINDS)('destroy() between a nack of a deleted event and its ack (%s)', (kind) => {
  it('the event is counted lost once', async (ctx) => {
    const x = await intercepted(ctx, kind);
    const { sink, ev, lines, fired } = await deletedInHand(x, 'nackgone-destroy', GRACE, (s) =>
      new Stream(s.name, x.c.redis).destroy(),
    );
    try {
      await ev.nack();
      expect(fired()).toBe(true);
      await waitFor(() => lines.some((l) => /stream key is gone|destroyed/.test(l.msg ?? '')), {
        timeout: 5 * GRACE,
        what: 'the sink to find the stream destroyed',
      });
      await waitFor(() => sink.counters.lost >= 1, { timeout: 5 * GRACE, what: 'the loss counted' });
      await stays(() => sink.counters.lost <= 1, GRACE, 'lost counted once').catch(() => {});
      const said = lines.filter((l) => l.level === 'warn').map((l) => [l.msg, (l.obj as { count?: number }).count]);
      expect(sink.counters.lost, JSON.stringify(said)).toBe(1);
    } finally {
      x.userHook = undefined;
      await within(sink.close(), 10_000, 'close');
    }
  }, 30_000);
});
