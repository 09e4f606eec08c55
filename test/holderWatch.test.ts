/**
 * Who reports an expired stream's loss when several instances read it
 * (internal/holderWatch.ts): the rules, without Redis. With Redis, in
 * sinkDeletes.test.ts (a crashed holder; a live holder and a closing instance).
 */
import { describe, expect, it } from 'vitest';
import { recordCheck } from '../packages/pulse-streaming/src/internal/expiryLoss.js';
import { HolderWatch, marksOf, reportLeftTo } from '../packages/pulse-streaming/src/internal/holderWatch.js';
import { newSinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';

const stream = () => newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);

describe('reportLeftTo', () => {
  it('another instance leaves an expiry to the holder at its check (at its last sweep without one), never a destroy', () => {
    const s = stream();
    expect(reportLeftTo(s, -1, 'me', s.lag >= 0)).toBeUndefined();
    s.leaseHeld = false;
    s.leaseHolder = 'a';
    expect(reportLeftTo(s, -1, 'me', s.lag >= 0)).toBe('a');
    recordCheck(s, 8, 2, '2-0', 1);
    s.leaseHolder = 'b';
    expect(reportLeftTo(s, -1, 'me', s.lag >= 0)).toBe('a');
    // destroy(): the obituary says it (taken by another: -2), not the holder.
    expect(reportLeftTo(s, 7, 'me', s.lag >= 0)).toBeUndefined();
    expect(reportLeftTo(s, -2, 'me', s.lag >= 0)).toBeUndefined();
    s.leaseHeld = true;
    recordCheck(s, 8, 2, '2-0', 1);
    expect(reportLeftTo(s, -1, 'me', s.lag >= 0)).toBeUndefined();
  });
  it('a sweep that found the key gone said "not held" without looking: the holder it names is this instance, which reports', () => {
    // It left the loss to itself, then said it may be lost, how many unknown.
    const s = stream();
    s.leaseHeld = false;
    s.leaseHolder = 'me';
    expect(reportLeftTo(s, -1, 'me', s.lag >= 0)).toBeUndefined();
  });
});

describe('HolderWatch', () => {
  const watch = () => {
    const reported: Array<[string, number]> = [];
    return { w: new HolderWatch(1000, (stream, count) => reported.push([stream, count])), reported };
  };
  it('waits from the first liveness call sent after the loss was left, not one already in flight', () => {
    const { w, reported } = watch();
    const inFlight = w.sending();
    w.leave('x', 5, 'why');
    // Answered after the leave, but sent before it: the wait has not begun.
    w.beat(inFlight, 10_000, new Map());
    w.beat(w.sending(), 10_500, new Map());
    w.beat(w.sending(), 11_400, new Map());
    expect(reported).toEqual([]);
    // A grace period after the first call sent after it: nobody marked it reported.
    w.beat(w.sending(), 11_500, new Map());
    expect(reported).toEqual([['x', 5]]);
    w.beat(w.sending(), 13_000, new Map());
    expect(reported).toHaveLength(1);
  });
  it("the holder's mark ends the wait: the loss is said once, by the holder", () => {
    const { w, reported } = watch();
    w.leave('x', 5, 'why');
    w.beat(w.sending(), 10_000, new Map());
    // Marked a little before this instance's wait began: this expiry's mark (found gone about the same time).
    w.beat(w.sending(), 10_200, new Map([['x', 9_400]]));
    w.beat(w.sending(), 12_000, new Map());
    expect(reported).toEqual([]);
  });
  it("an earlier expiry's mark (older than a grace period before the wait began) does not count", () => {
    const { w, reported } = watch();
    w.leave('x', 5, 'why');
    w.beat(w.sending(), 10_000, new Map([['x', 8_000]]));
    w.beat(w.sending(), 11_000, new Map([['x', 8_000]]));
    expect(reported).toEqual([['x', 5]]);
  });
  it('at close: what a mark covers is dropped, the rest reported, all of it when the marks could not be read', () => {
    const { w, reported } = watch();
    w.leave('x', 5, 'why');
    w.leave('y', 3, 'why');
    w.flush({ now: 10_000, reported: new Map([['x', 9_800]]) });
    expect(reported).toEqual([['y', 3]]);
    // After close, nothing would decide later: reported at once.
    w.leave('z', 1, 'why');
    expect(reported).toEqual([
      ['y', 3],
      ['z', 1],
    ]);
    const other = watch();
    other.w.leave('x', 2, 'why');
    other.w.flush();
    expect(other.reported).toEqual([['x', 2]]);
  });
  it('an unknown count (-1, no check of the stream) is passed on as such; nothing for 0', () => {
    const { w, reported } = watch();
    w.leave('x', -1, 'why');
    w.leave('y', 0, 'why');
    w.beat(w.sending(), 10_000, new Map());
    w.beat(w.sending(), 11_000, new Map());
    expect(reported).toEqual([['x', -1]]);
  });
  it('while liveness calls fail (no marks to read), what waited 2 grace periods by the local clock is reported', () => {
    // Left waiting for calls that might not come back, it was decided only at close.
    const { w, reported } = watch();
    w.leave('x', 5, 'why');
    const left = performance.now();
    w.unreadable(left + 1000);
    expect(reported).toEqual([]);
    w.unreadable(left + 2000);
    expect(reported).toEqual([['x', 5]]);
  });
  it('asks only for the marks of the streams it waits for (the liveness call reads those, not every mark)', () => {
    const { w } = watch();
    expect(w.waitingFor()).toEqual([]);
    w.leave('x', 5, 'why');
    w.leave('x', -1, 'why');
    w.leave('y', 1, 'why');
    expect(w.waitingFor()).toEqual(['x', 'y']);
    // ZMSCORE's reply, in the order asked: nil where no mark is.
    expect(marksOf(['x', 'y', 'z'], [Buffer.from('9800'), null, '12'])).toEqual(
      new Map([
        ['x', 9800],
        ['z', 12],
      ]),
    );
  });
  it('a report that throws (the user logger) neither repeats nor stops the others', () => {
    let calls = 0;
    const w = new HolderWatch(1000, () => {
      calls++;
      throw new Error('logger down');
    });
    w.leave('x', 1, 'why');
    w.leave('y', 1, 'why');
    w.beat(w.sending(), 10_000, new Map());
    w.beat(w.sending(), 11_000, new Map());
    w.beat(w.sending(), 12_000, new Map());
    expect(calls).toBe(2);
  });
});
