/**
 * Outside review P: the cap after the jitter (2ef2052) clips instead of
 * spreading. retry.ts says "a capped delay is spread below it only", but
 * `min(maxDelayMs, base * (1 - j + 2j * random))` with base = maxDelayMs
 * gives exactly maxDelayMs for every random >= 0.5: half of all capped
 * redeliveries (the long outage jitter is for) share one delay, the
 * synchronised retry wave jitter exists to break up. Expected: distinct
 * draws give distinct delays at the cap, as below it.
 */
import { describe, expect, it } from 'vitest';
import { retryDelay, retrySettings } from '../packages/pulse-streaming/src/internal/retry.js';

describe('retry jitter at the cap', () => {
  it('capped delays stay spread (not half of them exactly maxDelayMs)', () => {
    const retry = retrySettings({}); // defaults: delayMs 1000, factor 2, maxDelayMs 60000, jitter 0.2
    if (retry === false) throw new Error('no retry');
    const draws = [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99];
    // Below the cap (delivery 2: 2 s), each draw its own delay.
    expect(new Set(draws.map((r) => retryDelay(retry, 2, r))).size).toBe(draws.length);
    // At the cap (delivery 20), observed: 0.5 ... 0.99 all give 60000.
    const capped = draws.map((r) => retryDelay(retry, 20, r));
    for (const d of capped) expect(d).toBeLessThanOrEqual(60_000);
    expect(new Set(capped).size).toBe(draws.length);
  });
});
