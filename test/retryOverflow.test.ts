/**
 * Retry delays never compute to NaN or Infinity (outside review U, finding
 * 11): with `delayMs: 0`, `0 * factor^(d-1)` became `0 * Infinity` once the
 * power overflowed (from delivery 2 with factor 1e300, from about 1076 with
 * the default factor 2), Redis refused the nack and the event waited the
 * grace period instead of coming back at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { DEFAULT_RETRY, retryDelay } from '../packages/pulse-streaming/src/internal/retry.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

describe('retryDelay never computes NaN or Infinity', () => {
  it.each([
    ['delayMs 0, factor 1e300', { delayMs: 0, factor: 1e300, maxDelayMs: 60_000, jitter: 0 }, 0],
    ['delayMs 0, the default factor, delivery 2000', { ...DEFAULT_RETRY, delayMs: 0, jitter: 0 }, 0],
    ['the defaults, delivery 2000', { ...DEFAULT_RETRY, jitter: 0 }, 60_000],
    // Capped: scaled by 1 - jitter x random (0.5 here), spread below the cap.
    ['delayMs 1, factor Number.MAX_VALUE', { delayMs: 1, factor: Number.MAX_VALUE, maxDelayMs: 5000, jitter: 0.2 }, 4500],
  ])('%s', (_what, retry, expected) => {
    for (const delivery of [1, 2, 3, 1076, 2000]) {
      const d = retryDelay(retry, delivery, 0.5);
      expect(Number.isFinite(d)).toBe(true);
      if (delivery >= 1076) expect(d).toBe(expected);
    }
  });
});

describe.concurrent.each(CLIENT_KINDS)('retry delays that overflow (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('retry { delayMs: 0, factor: 1e300 }: failed deliveries still come back at once (no NaN delay)', async ({
    onTestFinished,
  }) => {
    const s = new Stream(uniqueName('retrynan'), c.redis);
    const sink = await s.newSink('g', { ackGracePeriodMs: 10_000, blockMs: 50 });
    onTestFinished(async () => {
      await sink.close();
      await s.destroy();
    });
    await s.add('e', 'x');
    const deliveries: number[] = [];
    void sink.process(
      (ev) => {
        deliveries.push(ev.deliveryCount);
        throw new Error('always fails');
      },
      { retry: { delayMs: 0, factor: 1e300 } },
    );
    // delayMs 0: every failed delivery is redelivered at once, well within the 10 s grace period.
    await waitFor(() => deliveries.length >= 5, { timeout: 5000, what: '5 deliveries' });
  });
});
