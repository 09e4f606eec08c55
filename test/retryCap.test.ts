/**
 * README "Batches and retries": delivery `d` that threw is redelivered after
 * `min(maxDelayMs, delayMs * factor^(d-1))`, scaled by a random factor in
 * `[1 - jitter, 1 + jitter]` "(never more than `maxDelayMs` however many
 * deliveries failed, and 0 with `delayMs: 0`)".
 *
 * The jitter was applied after the cap (internal/retry.ts `retryDelay`), so a
 * capped delay reached `maxDelayMs * (1 + jitter)`: with the defaults up to
 * 72 s, not 60 s. The cap holds after the jitter now. Outside review O.
 * Delays are read on the Redis side, as retry.test.ts does: the due time the
 * retry nack wrote against the server time of the nack.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { NACKED_IDLE_MS } from '../packages/pulse-streaming/src/internal/sinkDue.js';
import { sinkKeys } from '../packages/pulse-streaming/src/keys.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { DELAY_SNAPSHOT } from './support/delaySnapshot.js';
import { sinkFixture } from './support/sinkFixture.js';

describe.each(CLIENT_KINDS)('README retry cap (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const mode of ['process', 'processBatch'] as const) {
    it(`${mode}(): a retry delay capped at maxDelayMs is never more than maxDelayMs (jitter included)`, async (ctx: TestContext) => {
      const f = sinkFixture(ctx, c, 'revOcap');
      const s = f.stream();
      const sink = await f.sink(s, { ackGracePeriodMs: 500 });
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await s.add('e', String(i)));
      const maxDelayMs = 1000;
      // delayMs above maxDelayMs: every delivery's delay is the cap, before jitter.
      const retry = { delayMs: 5000, maxDelayMs, factor: 2, jitter: 0.5 };
      const ac = new AbortController();
      const fail = (): never => {
        throw new Error('fails');
      };
      const done =
        mode === 'process'
          ? sink.process(fail, { retry, concurrency: 30, signal: ac.signal })
          : // One batch per event: a batch draws one jitter factor for all its events.
            sink.processBatch(fail, { retry, maxBatch: 1, concurrency: 30, maxWaitMs: 0, signal: ac.signal });
      const delays = new Map<string, number>();
      const keys = [s.key, sinkKeys(s.name, 'sink').delays];
      await waitFor(
        async () => {
          for (const id of ids) {
            if (delays.has(id)) continue;
            const r = (await c.cmd('EVAL', DELAY_SNAPSHOT, 2, ...keys, 'sink', id)) as unknown[] | null;
            if (!r) continue;
            const [now, idle, due] = r.map(Number) as [number, number, number];
            delays.set(id, due - (now - idle + NACKED_IDLE_MS));
          }
          return delays.size === ids.length;
        },
        { timeout: 10_000, what: 'the first retry nack of every event' },
      );
      ac.abort();
      await done;
      const over = [...delays.values()].filter((d) => d > maxDelayMs + 10);
      // Fails now: about half the delays are between 1000 and 1500 ms (the cap times 1 + jitter).
      expect(over, `delays over maxDelayMs ${maxDelayMs}: ${over.join(', ')}`).toEqual([]);
    });
  }
});
