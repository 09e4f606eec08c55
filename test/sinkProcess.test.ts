/**
 * `process()`: acks, nacks on a throw, concurrency, abort and close; both
 * clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, connect, stays, type TestClient, waitFor, within } from './support/clients.js';
import { sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink process() (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingCount, fixture } = sinkSuite(() => c);

  it('process() acks on success', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const handled: string[] = [];
    const ac = new AbortController();
    const done = sink.process(
      (ev) => {
        handled.push(ev.id);
      },
      { signal: ac.signal },
    );
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('event', `p${i}`)) as string);
    await waitFor(() => handled.length >= 5, WAIT);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    expect(handled.sort()).toEqual([...ids].sort());
    ac.abort();
    await within(done, 5000, 'process after abort');
    expect(sink.counters.acked).toBe(5);
  });

  it('process() nacks on a throw: the event comes back with deliveryCount 2', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const calls: number[] = [];
    const ac = new AbortController();
    const done = sink.process(
      (ev) => {
        calls.push(ev.deliveryCount);
        if (ev.deliveryCount === 1) throw new Error('boom');
      },
      { signal: ac.signal },
    );
    await s.add('event', 'x');
    await waitFor(() => calls.length >= 2, WAIT);
    expect(calls).toEqual([1, 2]);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    ac.abort();
    await within(done, 5000, 'process after abort');
  });

  it('process() runs at most `concurrency` handlers at once', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 2000 });
    let active = 0;
    let maxActive = 0;
    const handled: string[] = [];
    const gates: Array<() => void> = [];
    const ac = new AbortController();
    const done = sink.process(
      async (ev) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => gates.push(r));
        handled.push(ev.id);
        active--;
      },
      { concurrency: 3, signal: ac.signal },
    );
    for (let i = 0; i < 12; i++) await s.add('event', `p${i}`);
    await waitFor(() => active === 3, WAIT);
    await stays(() => active === 3, 200, 'no 4th handler while 3 run');
    while (handled.length < 12) {
      await waitFor(() => gates.length > 0, WAIT);
      for (const g of gates.splice(0)) g();
      await new Promise((r) => setImmediate(r));
    }
    expect(maxActive).toBe(3);
    await waitFor(async () => (await pendingCount(s.key, 'sink')) === 0, WAIT);
    ac.abort();
    await within(done, 5000, 'process after abort');
  });

  it('process() resolves after an abort only once in-flight handlers finish, and acks them', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 2000 });
    let release: () => void = () => {};
    let started = false;
    const ac = new AbortController();
    let resolved = false;
    const done = sink
      .process(
        async () => {
          started = true;
          await new Promise<void>((r) => (release = r));
        },
        { signal: ac.signal },
      )
      .then(() => {
        resolved = true;
      });
    await s.add('event', 'x');
    await waitFor(() => started, WAIT);
    ac.abort();
    await stays(() => !resolved, 200, 'process waits for the in-flight handler');
    release();
    await within(done, 5000, 'process after the handler finished');
    expect(await pendingCount(s.key, 'sink')).toBe(0);
  });

  it('process() resolves when the sink closes', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const done = sink.process(() => {});
    await s.add('event', 'x');
    await waitFor(async () => sink.counters.delivered === 1 && (await pendingCount(s.key, 'sink')) === 0, WAIT);
    await sink.close();
    await within(done, 5000, 'process after close');
  });
});
