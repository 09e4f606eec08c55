/**
 * When a sink counts what it read or claimed as held (`StallClock`): a reply
 * that may have waited in the socket through a stall of the process, or on a
 * slow network, must go through the ownership check before a subscriber gets
 * it. A unit test: the clock is the only input, given here. Only this
 * process's clock counts: entry IDs carry the server's, which may run ahead.
 */
import { describe, expect, it } from 'vitest';
import { StallClock } from '../packages/pulse-streaming/src/internal/stallClock.js';

/** A clock at `t` ms, moved by the test; `beatEvery` ticks the beat timer every 62 ms (grace 500 ms: beats of grace / 8). */
function clock(grace = 500, beatMs = 62) {
  let now = 0;
  const c = new StallClock(beatMs, grace, () => now);
  return {
    c,
    at: (t: number) => {
      now = t;
    },
    beatEvery: (from: number, to: number) => {
      for (let t = from; t <= to; t += beatMs) {
        now = t;
        c.beat();
      }
    },
  };
}

/** A blocking read sent at `at` (it may wait at Redis), and a command that does not. */
const blocking = (at: number) => ({ at, waits: true });
const prompt = (at: number) => ({ at, waits: false });

describe('StallClock', () => {
  it('without a stall, a blocking read (which may wait long) is held now, a prompt command since it was sent', () => {
    const { c, at, beatEvery } = clock();
    beatEvery(0, 2000);
    at(2010);
    expect(c.heldAt(blocking(100))).toBe(2010);
    expect(c.heldAt(prompt(2005))).toBe(2005);
    expect(c.heldAt()).toBe(2010);
  });

  it('while the beats have stopped (frozen now), what is handled counts as held at the last beat', () => {
    const { c, at, beatEvery } = clock();
    beatEvery(0, 1000);
    at(1600);
    expect(c.heldAt(blocking(900))).toBe(992);
  });

  it('a read sent before a stall counts as held before it, however long after the stall its reply is handled', () => {
    const { c, at, beatEvery } = clock(500);
    beatEvery(0, 1000); // last beat 992
    const served = blocking(995); // a blocking read goes out, then the process is stopped for 1.5 s
    beatEvery(2500, 5000); // SIGCONT: the timers run first and see the gap, then keep beating
    // A starved process handles the reply 2.5 s after the stall was seen: more than a grace period.
    at(5005);
    expect(c.heldAt(served)).toBe(992);
    // Sent after the stall was seen: held now.
    expect(c.heldAt(blocking(2600))).toBe(5005);
  });

  it('a second stall before the reply is handled does not hide the first', () => {
    const { c, at, beatEvery } = clock(20_000, 1000);
    beatEvery(0, 10_000);
    const served = blocking(10_100);
    beatEvery(35_000, 36_000); // frozen 25 s: another consumer may claim from 30 s on
    beatEvery(41_300, 41_300); // a second stall of 5 s, reply still not handled
    at(41_350);
    expect(c.heldAt(served)).toBe(10_000);
  });

  it('the reply of a prompt command late for another reason (a slow network, no stall) is as old as the command', () => {
    const { c, at, beatEvery } = clock(500);
    beatEvery(0, 3000);
    at(3010);
    expect(c.heldAt(prompt(1000))).toBe(1000);
  });

  it('without the time served, a reply counts as from before a stall for a grace period after it was seen', () => {
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
