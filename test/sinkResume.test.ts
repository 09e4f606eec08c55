/**
 * Pausing and resuming on one sink instance: events the sink read but never
 * handed out (a `break`, an aborted `process()`, a second subscription that
 * leaves) are given back (sinkGiveBack.test.ts), and a subscriber of the
 * same instance that is there or comes within the grace period takes them
 * back at once, as first deliveries. Before, they came only after the grace
 * period (claimed like a crashed consumer's), and after newer events.
 * The grace period here is a minute and each wait 10 s: before the change,
 * none of these waits could succeed.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { readDeadLetters, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, type TestClient, take, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const GRACE = 60_000;
const WAIT = { timeout: 10_000 };

describe.concurrent.each(CLIENT_KINDS)('a subscriber of the same instance takes back what was given back (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'resume', { ackGracePeriodMs: GRACE, maxDeliveries: 1 });

  /** Owner and delivery count of each pending entry of group `sink`, by ID. */
  async function pending(key: string): Promise<Map<string, [string, number]>> {
    const r = (await c.cmd('XPENDING', key, 'sink', '-', '+', 1000)) as unknown[][];
    return new Map(r.map((e) => [String(e[0]), [String(e[1]), Number(e[3])]]));
  }

  async function addAll(s: { add(n: string, p: string): Promise<string | undefined> }, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await s.add('e', `${i}`)) as string);
    return ids;
  }

  it('a for await loop started again after a break gets the rest at once, in order, as first deliveries', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids = await addAll(s, 10);
    const sink = await f.sink(s);
    for await (const ev of sink) {
      await ev.ack();
      break;
    }
    const got: SinkEvent[] = [];
    void collect(sink.subscribe(), got, true);
    await waitFor(() => got.length === 9, { ...WAIT, what: 'the nine others, long before the grace period' });
    expect(got.map((e) => [e.id, e.deliveryCount])).toEqual(ids.slice(1).map((id) => [id, 1]));
    expect(sink.counters.redelivered).toBe(0);
    expect(await readDeadLetters(s)).toHaveLength(0);
  });

  it('process() started again after an abort handles every event once, none dead-lettered', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids = await addAll(s, 30);
    const sink = await f.sink(s, { bufferSize: 50 });
    const handled: Array<[string, number]> = [];
    const stop = new AbortController();
    const first = sink.process(
      async (ev) => {
        handled.push([ev.id, ev.deliveryCount]);
        if (handled.length === 3) stop.abort();
      },
      { signal: stop.signal },
    );
    await first;
    expect(handled.length).toBeLessThan(30);
    const again = sink.process(async (ev) => {
      handled.push([ev.id, ev.deliveryCount]);
    });
    await waitFor(() => handled.length === 30, { ...WAIT, what: 'all 30 handled, long before the grace period' });
    expect(handled.map(([id]) => id).sort()).toEqual([...ids].sort());
    expect(handled.filter(([, n]) => n !== 1)).toEqual([]);
    expect(await readDeadLetters(s)).toHaveLength(0);
    await waitFor(async () => (await pending(s.key)).size === 0, { ...WAIT, what: 'all acked' });
    await sink.close();
    await again;
  });

  it('a subscription still there gets what another one leaves behind', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const a = sink.subscribe();
    const ids = await addAll(s, 5);
    await waitFor(() => a.size === 5, { ...WAIT, what: 'a buffered all five' });
    // b comes after the read: it never had them.
    const b = sink.subscribe();
    const [ev] = await take(a, 1);
    await ev?.ack();
    sink.unsubscribe(a);
    const got = await take(b, 4, WAIT.timeout);
    expect(got.map((e) => [e.id, e.deliveryCount])).toEqual(ids.slice(1).map((id) => [id, 1]));
    for (const e of got) await e.ack();
  });

  it('what another consumer claimed, or was deleted, meanwhile is not taken back', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids = await addAll(s, 4);
    const sink = await f.sink(s);
    for await (const ev of sink) {
      await ev.ack();
      break;
    }
    await waitFor(async () => [...(await pending(s.key)).values()].every(([, n]) => n === 0), {
      ...WAIT,
      what: 'the three others given back',
    });
    const [, claimed, deleted, kept] = ids as [string, string, string, string];
    await c.cmd('XCLAIM', s.key, 'sink', 'intruder', '0', claimed);
    await c.cmd('XDEL', s.key, deleted);
    const got: SinkEvent[] = [];
    void collect(sink.subscribe(), got, true);
    const marker = (await s.add('e', 'marker')) as string;
    await waitFor(() => got.some((e) => e.id === marker) && got.some((e) => e.id === kept), {
      ...WAIT,
      what: 'the kept event and the marker',
    });
    expect(got.map((e) => e.id).sort()).toEqual([kept, marker].sort());
    const p = await pending(s.key);
    expect(p.get(claimed)).toEqual(['intruder', 1]);
    // Still pending, not handed out: the claim path finds it gone and reports it once its grace period passes.
    expect(p.get(deleted)?.[1]).toBe(0);
  });

  it('a stuck subscriber takes nothing back: what another leaves goes to another instance', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids = await addAll(s, 3);
    const sink = await f.sink(s, { ackGracePeriodMs: 1000 });
    const leaving = sink.subscribe();
    const [ev] = await take(leaving, 1);
    await ev?.ack();
    const stuck = sink.subscribe();
    // What is tested is a subscriber that took nothing for a grace period: only time makes one.
    await new Promise((r) => setTimeout(r, 1200));
    sink.unsubscribe(leaving);
    const other = await f.sink(s, { ackGracePeriodMs: 1000 });
    const got = await take(other.subscribe(), 2, WAIT.timeout);
    expect(got.map((e) => [e.id, e.deliveryCount])).toEqual(ids.slice(1).map((id) => [id, 1]));
    expect(stuck.size).toBe(0);
    for (const e of got) await e.ack();
  });
});
