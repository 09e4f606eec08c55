/**
 * Events a sink read but never handed to a subscriber do not count as
 * deliveries (API.md: they "stay pending and go to another consumer after
 * the grace period"): a `break` out of a `for await` loop, `close()` during
 * a rolling deploy, a read that returns after the last subscriber left give
 * them back with their delivery count as it was before the read. Before,
 * each such event came back with `deliveryCount` one higher, and with
 * `maxDeliveries: 1` it was dead-lettered although no handler ever saw it.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { readDeadLetters, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, type TestClient, take, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const GRACE = 500;
const WAIT = { timeout: 10_000 };

describe.concurrent.each(CLIENT_KINDS)('events never handed out are given back (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'giveback', { ackGracePeriodMs: GRACE, maxDeliveries: 1 });

  /** Delivery count of each pending entry of group `sink`, by ID. */
  async function deliveries(key: string): Promise<Map<string, number>> {
    const r = (await c.cmd('XPENDING', key, 'sink', '-', '+', 1000)) as unknown[][];
    return new Map(r.map((e) => [String(e[0]), Number(e[3])]));
  }

  it('a break out of a for await loop: the events it never took go to another instance as first deliveries', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids: string[] = [];
    for (const p of ['A', 'B', 'C']) ids.push((await s.add('e', p)) as string);
    const one = await f.sink(s);
    for await (const ev of one) {
      expect(ev.text()).toBe('A');
      await ev.ack();
      break;
    }
    // B and C were read with A: pending for the first instance, never delivered to code.
    await waitFor(
      async () => {
        const d = await deliveries(s.key);
        return d.size === 2 && d.get(ids[1] as string) === 0 && d.get(ids[2] as string) === 0;
      },
      { ...WAIT, what: 'B and C given back' },
    );
    const two = await f.sink(s);
    const got: SinkEvent[] = [];
    void collect(two.subscribe(), got, true);
    await waitFor(() => got.length === 2, { ...WAIT, what: 'B and C handled by the other instance' });
    expect(got.map((e) => [e.id, e.deliveryCount])).toEqual([
      [ids[1], 1],
      [ids[2], 1],
    ]);
    // Claimed from the first instance, but first deliveries: not counted as redeliveries.
    expect(two.counters).toMatchObject({ delivered: 2, redelivered: 0 });
    expect(await readDeadLetters(s)).toHaveLength(0);
  });

  it('close() during process() (a rolling deploy): every event is handled once, none dead-lettered', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const events = 50;
    for (let i = 0; i < events; i++) await s.add('e', `${i}`);
    const one = await f.sink(s);
    const handled: Array<[string, number]> = [];
    const first = one.process(async (ev) => {
      handled.push([ev.id, ev.deliveryCount]);
      await new Promise((r) => setTimeout(r, 20)); // the handler's work
    });
    await waitFor(() => handled.length >= 3, { ...WAIT, what: 'a few handled' });
    await one.close();
    await first;
    const two = await f.sink(s);
    const second = two.process(async (ev) => {
      handled.push([ev.id, ev.deliveryCount]);
    });
    await waitFor(() => handled.length >= events, { ...WAIT, what: 'all handled' });
    expect(new Set(handled.map(([id]) => id)).size).toBe(events);
    expect(handled.filter(([, n]) => n !== 1)).toEqual([]);
    expect(await readDeadLetters(s)).toHaveLength(0);
    await two.close();
    await second;
  });

  it('a read that returns after the last subscriber left: its events are given back', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { blockMs: 5000 });
    const stop = new AbortController();
    const sub = sink.subscribe({ signal: stop.signal });
    // The blocking read is out once the group has this consumer reading; leave, then add.
    const waiting = sub.next();
    await waitFor(async () => Number(await c.cmd('XLEN', s.key)) === 0, { ...WAIT, what: 'stream created' });
    await new Promise((r) => setTimeout(r, 200)); // let the blocking read be sent (nothing to wait for on the client)
    stop.abort();
    expect((await waiting).done).toBe(true);
    const id = (await s.add('e', 'late')) as string;
    await waitFor(async () => (await deliveries(s.key)).get(id) === 0, { ...WAIT, what: 'the late event given back' });
    const other = await f.sink(s);
    const [ev] = await take(other.subscribe(), 1, WAIT.timeout);
    expect([ev?.id, ev?.deliveryCount]).toEqual([id, 1]);
    await ev?.ack();
    expect(await readDeadLetters(s)).toHaveLength(0);
  });

  it('an event a subscription took is not given back when it leaves; one still buffered is', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const a = sink.subscribe();
    const b = sink.subscribe();
    const idA = (await s.add('e', 'taken by a')) as string;
    const idB = (await s.add('e', 'taken by nobody')) as string;
    const [ev] = await take(a, 1);
    expect(ev?.id).toBe(idA);
    // The other one is buffered by a or b (each event goes to one subscription of the instance).
    await waitFor(() => a.size + b.size === 1, { ...WAIT, what: 'the second buffered' });
    // a leaves first (what it buffered is taken back by b at once), then b.
    sink.unsubscribe(a);
    await waitFor(() => b.size === 1, { ...WAIT, what: 'b has the second' });
    sink.unsubscribe(b);
    await waitFor(async () => (await deliveries(s.key)).get(idB) === 0, { ...WAIT, what: 'the untaken event given back' });
    // The taken one is still being worked on by a's code: it keeps its delivery.
    expect((await deliveries(s.key)).get(idA)).toBe(1);
    await ev?.ack();
  });
});
