/**
 * `nack()` with and without a delay, and `inProgress()` holding an event past
 * the grace period; both clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, take } from './support/clients.js';
import { sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink nack and inProgress (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingCount, pendingEntries, fixture } = sinkSuite(() => c);

  it('nack({ delayMs: 0 }) redelivers well before the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    await ev?.nack({ delayMs: 0 });
    const [re] = await take(sub, 1, 3000);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    await re?.ack();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('nack({ delayMs }) redelivers after that delay, not after the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    const t = Date.now();
    await ev?.nack({ delayMs: 400 });
    const [re] = await take(sub, 1, 3500);
    expect(Date.now() - t).toBeGreaterThanOrEqual(390);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    await re?.ack();
  });

  it('nack() without a delay redelivers after the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 400;
    const sink = await f.sink(s, { ackGracePeriodMs: grace });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    const t = Date.now();
    await ev?.nack();
    const [re] = await take(sub, 1, WAIT.timeout);
    expect(Date.now() - t).toBeGreaterThanOrEqual(grace - 10);
    expect(re?.id).toBe(id);
    expect(re?.deliveryCount).toBe(2);
    await re?.ack();
  });

  it('inProgress() keeps an event from being redelivered while a handler works for 3 x grace', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const grace = 500;
    const sink = await f.sink(s, { ackGracePeriodMs: grace });
    const sub = sink.subscribe();
    const id = await s.add('event', 'x');
    const [ev] = await take(sub, 1);
    const ticker = setInterval(() => {
      ev?.inProgress().catch(() => {});
    }, grace / 6);
    try {
      expect(await nextWithin(sub, 3 * grace)).toBe('timeout');
    } finally {
      clearInterval(ticker);
    }
    expect(await pendingEntries(s.key, 'sink')).toEqual([{ id, consumer: sink.consumerName, deliveries: 1 }]);
    await ev?.ack();
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });
});
