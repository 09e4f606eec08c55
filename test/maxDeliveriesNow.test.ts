/**
 * A handler of `process()` or `processBatch()` that fails on an event's last allowed delivery
 * (`deliveryCount` at `maxDeliveries`): the event goes to the dead-letter stream at once. It was
 * nacked with the retry delay first, and only the claim after that delay moved it: with the
 * default retry up to 60 s of waiting for a delivery that could never come (found by an outside
 * trial of the README's example: "after 5 failed deliveries moves the event").
 *
 * Failed before the fix (both clients, both ways, 8/8): with a 300 s retry delay after the last
 * allowed delivery, no dead letter within 10 s.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys } from '../packages/pulse-streaming/src/keys.js';
import { handleBy } from './support/claimRace.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

/**
 * The retry delay after the last allowed delivery is 300 s: a dead letter that waited for it would
 * time out. With `maxDeliveries: 2` the first failure waits 100 ms.
 */
const retryFor = (maxDeliveries: number) =>
  maxDeliveries === 1
    ? { delayMs: 300_000, maxDelayMs: 600_000, jitter: 0 }
    : { delayMs: 100, factor: 3000, maxDelayMs: 600_000, jitter: 0 };

describe.concurrent.each(CLIENT_KINDS)('a failure on the last allowed delivery (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const cases = [
    { how: 'process', maxDeliveries: 2 },
    { how: 'processBatch', maxDeliveries: 2 },
    { how: 'process', maxDeliveries: 1 },
    { how: 'processBatch', maxDeliveries: 1 },
  ] as const;

  it.for(cases)('dead-letters the event at once: $how, maxDeliveries $maxDeliveries', { timeout: 30_000 }, async (t, ctx) => {
    const f = sinkFixture(ctx, c, 'max-now');
    const s = f.stream();
    const id = await s.add('e', 'poison');
    const other = await s.add('e', 'fine');
    const sink = await f.sink(s, { maxDeliveries: t.maxDeliveries, ackGracePeriodMs: 1000 });
    const calls: number[] = [];
    const stop = new AbortController();
    const run = handleBy(
      sink,
      t.how,
      async (events: SinkEvent[]) => {
        for (const ev of events) if (ev.id === id) calls.push(ev.deliveryCount);
        if (events.some((ev) => ev.id === id)) throw new Error('poison');
      },
      { signal: stop.signal, retry: retryFor(t.maxDeliveries) },
    );
    try {
      const dead = `pulse:stream:${s.name}:dead`;
      const letters = await waitFor(
        async () => {
          const r = (await c.cmd('XRANGE', dead, '-', '+')) as [unknown, unknown[]][];
          return r.length > 0 ? r : undefined;
        },
        { timeout: 10_000, what: `the dead letter (handler calls ${JSON.stringify(calls)})` },
      );
      ctx.expect(calls).toEqual(Array.from({ length: t.maxDeliveries }, (_, i) => i + 1));
      ctx.expect(letters).toHaveLength(1);
      const fields = (letters[0]?.[1] ?? []).map(String);
      const field = (name: string) => fields[fields.indexOf(name) + 1];
      ctx.expect(field('p')).toBe('poison');
      ctx.expect(field('source_id')).toBe(id);
      ctx.expect(field('deliveries')).toBe(String(t.maxDeliveries));
      ctx.expect(field('reason')).toBe('max deliveries reached');
      // Acked in the source and no delay left behind for it; the other event handled as usual.
      await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) === 0, {
        what: 'nothing pending',
      });
      ctx.expect(await c.cmd('ZSCORE', sinkKeys(s.name, 'sink').delays, id)).toBeNull();
      ctx.expect(sink.counters.deadLettered).toBe(1);
      ctx.expect(other).not.toBe(id);
    } finally {
      stop.abort();
      await run.catch(() => {});
    }
  });
});
