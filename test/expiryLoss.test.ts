/**
 * What a sink reports lost when its stream expires (internal/expiryLoss.ts):
 * the rules, without Redis. Their behaviour with Redis is in sinkDeletes.test.ts
 * and deadLetterReplay.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  EARLY_CHECK_MS,
  expiryEstimate,
  FINAL_CHECK_MS,
  finalCheckAt,
  lostWithStream,
  noteAcked,
  Rechecks,
  readAfterCheck,
  recordCheck,
  wantsRecheck,
} from '../packages/pulse-streaming/src/internal/expiryLoss.js';
import { newSinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';

describe('lostWithStream: what an instance reports lost with an expired stream', () => {
  it('the lease holder reports its last check, never fewer than the events it had buffered', () => {
    expect(lostWithStream(30, true, 20)).toBe(30);
    // A check made before these 20 were read counted none of them (once reported 0: a silent loss).
    expect(lostWithStream(0, true, 20)).toBe(20);
  });
  it('another instance leaves it to the holder, whose estimate counts its buffered events', () => {
    expect(lostWithStream(30, false, 20)).toBe(0);
  });
  it('an instance that did not know yet whether it held the lease reports as the holder would', () => {
    // Its first sweep had not answered when it checked (a loaded machine): it reported 0 before.
    expect(lostWithStream(0, undefined, 20)).toBe(20);
    expect(lostWithStream(20, undefined, 5)).toBe(20);
  });
});

describe('noteAcked: acks that leave the estimate of an expired stream', () => {
  it('counts acked events up to the group position of the last check, never those read after it', () => {
    const s = newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
    noteAcked(s, ['1-0'], 1, 10, 11);
    // No check yet: nothing to take from.
    expect(s.ackedSinceCheck).toBe(0);
    s.pendingUpTo = '5-0';
    s.checkAppliedAt = 100;
    // 6-0 was read after the check (unread then, or added since): not among its pending events.
    noteAcked(s, ['3-0', '5-0', '6-0'], 3, 101, 102);
    expect(s.ackedSinceCheck).toBe(2);
    // XACK said only one was still pending: the other was acked before, not pending at the check.
    noteAcked(s, ['1-0', '2-0'], 1, 102, 103);
    expect(s.ackedSinceCheck).toBe(3);
  });
  it('leaves in the estimate an ack sent before the check was applied (it may have run before), and wants a check after it', () => {
    const s = newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
    s.pendingUpTo = '5-0';
    s.checkAppliedAt = 100;
    noteAcked(s, ['3-0'], 1, 99, 105);
    expect(s.ackedSinceCheck).toBe(0);
    // A check sent after that ack's reply ran after it: it is wanted, and one sent before does not do.
    expect(s.recheckAfter).toBe(105);
    recordCheck(s, 0, 0, '5-0', 104);
    expect(s.recheckAfter).toBe(105);
    recordCheck(s, 0, 0, '5-0', 106);
    expect(s.recheckAfter).toBeUndefined();
  });
  it('what the read after a check delivered is pending, not unread, and its acks leave the estimate', () => {
    const s = newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
    recordCheck(s, 3, 1, '1-0', 300);
    readAfterCheck(s, [
      ['2-0', []],
      ['3-0', []],
    ]);
    expect([s.lag, s.pending, s.pendingUpTo]).toEqual([1, 3, '3-0']);
    noteAcked(s, ['2-0', '3-0'], 2, s.checkAppliedAt + 1, s.checkAppliedAt + 2);
    expect(expiryEstimate(s)).toBe(2);
  });
  it('wants a check after one that an ack answered after it was sent may have raced', () => {
    const s = newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
    noteAcked(s, ['7-0'], 1, 200, 210);
    // This check was sent at 205: the ack may have run before or after it.
    recordCheck(s, 0, 1, '7-0', 205);
    expect(s.recheckAfter).toBe(210);
    recordCheck(s, 0, 0, '7-0', 211);
    expect(s.recheckAfter).toBeUndefined();
  });
});

describe('Rechecks: checks that quiet streams want after an ack raced their last one', () => {
  it('backs off while checks fail (Redis away), and stops once one goes through', async () => {
    const s = newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
    s.recheckAfter = 1;
    const ac = new AbortController();
    let calls = 0;
    let ok = false;
    const rechecks = new Rechecks(
      new Map([['pulse:stream:x', s]]),
      async (streams) => {
        calls += streams.length;
        if (ok) {
          s.checkAppliedAt = performance.now();
          s.recheckAfter = undefined;
        }
      },
      ac.signal,
    );
    rechecks.acked();
    // 100 + 200 + 400 + 800 ms: 4 calls in 1.6 s, where a fixed 100 ms would make 15.
    await new Promise((r) => setTimeout(r, 1600));
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThanOrEqual(5);
    ok = true;
    await vi.waitFor(() => expect(s.recheckAfter).toBeUndefined(), { timeout: 5000, interval: 50 });
    const after = calls;
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(after);
    ac.abort();
  });
});

describe('the last check before an expiry', () => {
  it('a check that saw a time to live wants two more: EARLY_CHECK_MS, then FINAL_CHECK_MS before the stream expires', () => {
    const s = newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
    recordCheck(s, 0, 3, '3-0', performance.now(), -1);
    expect(finalCheckAt(s)).toBeUndefined();
    const sent = performance.now();
    recordCheck(s, 0, 3, '3-0', sent, 3000);
    // Counted from the send: never later than the stream expires.
    expect(finalCheckAt(s)).toBe(sent + 3000 - EARLY_CHECK_MS);
    expect(wantsRecheck(s, sent + 1000)).toBe(false);
    expect(wantsRecheck(s, sent + 3000 - EARLY_CHECK_MS)).toBe(true);
    // The early check applied: the last one is next (a loaded process may run it after the expiry).
    const early = performance.now();
    // Summed as the library sums it (send + time to live): floats summed in another order differ
    // in the last bit once performance.now() is large (a full run: 131012.858314 vs ...001).
    const ttl = EARLY_CHECK_MS - 20;
    recordCheck(s, 0, 0, '3-0', early, ttl);
    expect(finalCheckAt(s)).toBe(early + ttl - FINAL_CHECK_MS);
    expect(wantsRecheck(s, early + ttl - FINAL_CHECK_MS)).toBe(true);
    recordCheck(s, 0, 0, '3-0', performance.now(), FINAL_CHECK_MS - 10);
    expect(finalCheckAt(s)).toBeUndefined();
  });
});
