/**
 * A nack of an event deleted from its stream (still pending: it can never be
 * redelivered) counts it lost, then acks it (`SinkHolds.reportGone`). When
 * that XACK fails (here Redis refuses it: NOPERM, an ACL changed for a
 * moment), the nack rejects and the event stays pending; whatever finds it
 * gone next (a claim a grace period later) must not count it again.
 * Checked, not a defect (a suspicion of an earlier session): counted once,
 * the later finding acks it without a second count. Each event ends in
 * exactly one state (README); kept so that it stays so.
 */
import { describe, expect, it } from 'vitest';
import { CLIENT_KINDS, stays, waitFor, within } from './support/clients.js';
import { deletedInHand, intercepted } from './support/controlIntercept.js';

const GRACE = 1000;

describe.each(CLIENT_KINDS)('the ack of a nacked deleted event refused (%s)', (kind) => {
  it('the event is counted lost once', async (ctx) => {
    const x = await intercepted(ctx, kind);
    // Refused by Redis itself: the default user may not XACK until the next command of `c`.
    const { s, sink, ev, lines, fired } = await deletedInHand(x, 'nackgone-ackfails', GRACE, async () => {
      await x.c.cmd('ACL', 'SETUSER', 'default', '-xack');
      setTimeout(() => void x.c.cmd('ACL', 'SETUSER', 'default', '+xack'), 50);
    });
    try {
      const first = await ev.nack().then(
        () => 'resolved',
        (e: Error) => `rejected: ${e.message}`,
      );
      expect(fired()).toBe(true);
      expect(first).toMatch(/^rejected: .*NOPERM/);
      // The event is still pending for this consumer: a claim finds it gone a grace period later.
      await waitFor(async () => ((await x.c.cmd('XPENDING', s.key, 'g')) as unknown[])[0] === 0, {
        timeout: 6 * GRACE,
        what: `the event acked in the end (nack ${first})`,
      });
      await stays(() => sink.counters.lost <= 1, GRACE, 'lost counted once').catch(() => {});
      const said = lines.filter((l) => l.level === 'warn').map((l) => [l.msg, (l.obj as { count?: number }).count]);
      expect(sink.counters.lost, `nack ${first}; ${JSON.stringify(said)}`).toBe(1);
    } finally {
      x.userHook = undefined;
      await within(sink.close(), 10_000, 'close');
    }
  }, 30_000);
});
