/**
 * When a sink counts what it read or claimed as held (`StallClock`): a reply
 * that may have waited in the socket through a stall of the process must go
 * through the ownership check before a subscriber gets it. A unit test: the
 * clock is the only input, given here.
 */
import { describe, expect, it } from 'vitest';
import { StallClock } from '../packages/pulse-streaming/src/internal/stallClock.js';

/** A clock at `t` ms, moved by the test. */
function clock(grace = 500): { c: StallClock; at: (t: number) => void; beatEvery: (from: number, to: number) => void } {
  let now = 0;
  const c = new StallClock(62, grace, () => now);
  return {
    c,
    at: (t) => {
      now = t;
    },
    beatEvery: (from, to) => {
      for (let t = from; t <= to; t += 62) {
        now = t;
        c.beat();
      }
    },
  };
}

describe('StallClock', () => {
  it('without a stall, what is handled now is held now', () => {
    const { c, at, beatEvery } = clock();
    beatEvery(0, 2000);
    at(2010);
    expect(c.heldAt(1990)).toBe(2010);
    expect(c.heldAt()).toBe(2010);
  });

  it('while the beats have stopped (frozen now), what is handled counts as held at the last beat', () => {
    const { c, at, beatEvery } = clock();
    beatEvery(0, 1000);
    at(1600);
    expect(c.heldAt(900)).toBe(992);
  });

  it('a read sent before a stall counts as held before it, however long after the stall its reply is handled', () => {
    const { c, at, beatEvery } = clock(500);
    beatEvery(0, 1000); // last beat 992
    const sentAt = 995; // a blocking read goes out, then the process is stopped for 1.5 s
    beatEvery(2500, 5000); // SIGCONT: the timers run first and see the gap, then keep beating
    // A starved process handles the reply 2.5 s after the stall was seen: more than a grace period.
    at(5005);
    expect(c.heldAt(sentAt)).toBe(992);
    // A read sent after the stall was seen is held now.
    expect(c.heldAt(2600)).toBe(5005);
  });

  it('without the send time, a reply counts as from before a stall for a grace period after it was seen', () => {
    const { c, at, beatEvery } = clock(500);
    beatEvery(0, 1000);
    beatEvery(2500, 2800);
    at(2900);
    expect(c.heldAt()).toBe(992);
    beatEvery(2862, 3100);
    at(3100);
    expect(c.heldAt()).toBe(3100);
  });
});
