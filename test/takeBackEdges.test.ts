/**
 * Review of the take-back change (2857d77), continued: bounds, a second
 * instance, a deleted stream key, counters; and sink.ack()'s new check
 * (2ff1d64) leaving a valid event settled but never acked.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { InvalidArgumentError, readDeadLetters, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, stays, type TestClient, take, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const WAIT = { timeout: 15_000 };

describe.concurrent.each(CLIENT_KINDS)('review: take back, continued (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext, grace: number) =>
    sinkFixture(ctx, c, 'rvtb2', { ackGracePeriodMs: grace, maxDeliveries: 1 });

  async function counts(key: string): Promise<number[]> {
    const r = (await c.cmd('XPENDING', key, 'sink', '-', '+', 1000)) as unknown[][];
    return r.map((e) => Number(e[3]));
  }

  it('a subscriber that takes nothing: what is taken back never passes bufferSize + maxPolled', async (ctx) => {
    const f = fixture(ctx, 60_000);
    const s = f.stream();
    for (let i = 0; i < 200; i++) await s.add('e', `${i}`);
    const sink = await f.sink(s, { bufferSize: 5, maxPolled: 5 });
    // Several subscriptions leave with full buffers while one stays and takes nothing.
    const idle = sink.subscribe();
    let most = 0;
    const timer = setInterval(() => (most = Math.max(most, idle.size)), 1);
    for (let i = 0; i < 10; i++) {
      const sub = sink.subscribe();
      await waitFor(() => sub.size > 0 || idle.size >= 5, { ...WAIT, what: 'something buffered' });
      sink.unsubscribe(sub);
      await new Promise((r) => setTimeout(r, 30));
      most = Math.max(most, idle.size);
    }
    clearInterval(timer);
    expect(most).toBeLessThanOrEqual(10);
    sink.unsubscribe(idle);
  });

  it('bound: a take-back and a read resuming at once never put more than bufferSize + maxPolled in a buffer', async (ctx) => {
    const f = fixture(ctx, 60_000);
    const s = f.stream();
    for (let i = 0; i < 100; i++) await s.add('e', `${i}`);
    const sink = await f.sink(s, { bufferSize: 5, maxPolled: 5 });
    let most = 0;
    for (let round = 0; round < 8; round++) {
      const a = sink.subscribe();
      await waitFor(() => a.size >= 5, { ...WAIT, what: `a full (round ${round})` });
      const b = sink.subscribe();
      const timer = setInterval(() => (most = Math.max(most, b.size)), 0);
      sink.unsubscribe(a);
      await waitFor(() => b.size >= 5, { ...WAIT, what: 'b got them' });
      // Only time shows that nothing more comes: the bound is what is measured.
      await new Promise((r) => setTimeout(r, 100));
      clearInterval(timer);
      most = Math.max(most, b.size);
      // b leaves with what it holds: given back, and taken back by the next round's a.
      sink.unsubscribe(b);
    }
    expect(most).toBeLessThanOrEqual(10);
  });

  it('no subscriber on this instance: another instance gets what it gave back after the grace period, count 1', async (ctx) => {
    const f = fixture(ctx, 800);
    const s = f.stream();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await s.add('e', `${i}`)) as string);
    const one = await f.sink(s);
    for await (const ev of one) {
      await ev.ack();
      break;
    }
    await waitFor(
      async () => {
        const n = await counts(s.key);
        return n.length === 5 && n.every((x) => x === 0);
      },
      { ...WAIT, what: 'five given back' },
    );
    const two = await f.sink(s);
    const got: SinkEvent[] = [];
    void collect(two.subscribe(), got, true);
    await waitFor(() => got.length === 5, { ...WAIT, what: 'five at the other instance' });
    // This instance subscribes again later: it must not take back what the other one has now.
    const again: SinkEvent[] = [];
    void collect(one.subscribe(), again, true);
    await stays(() => again.length === 0, 500, 'nothing handed out twice');
    expect(got.map((e) => [e.id, e.deliveryCount])).toEqual(ids.slice(1).map((id) => [id, 1]));
    expect(await readDeadLetters(s)).toHaveLength(0);
  });

  it('stream key deleted between give-back and take-back: nothing of the old key handed out, the loss reported, new events delivered', async (ctx) => {
    const f = fixture(ctx, 1000);
    const s = f.stream();
    for (let i = 0; i < 5; i++) await s.add('e', `old-${i}`);
    const sink = await f.sink(s);
    for await (const ev of sink) {
      await ev.ack();
      break;
    }
    await waitFor(
      async () => {
        const n = await counts(s.key);
        return n.length === 4 && n.every((x) => x === 0);
      },
      { ...WAIT, what: 'four given back' },
    );
    await c.cmd('DEL', s.key);
    const got: SinkEvent[] = [];
    void collect(sink.subscribe(), got, true);
    const fresh = (await s.add('e', 'new')) as string;
    await waitFor(() => got.some((e) => e.id === fresh), { ...WAIT, what: 'the new event' });
    await waitFor(() => sink.counters.lost >= 4, { ...WAIT, what: 'the four reported lost' });
    expect(got.filter((e) => e.text().startsWith('old-')).map((e) => e.id)).toEqual([]);
    expect(await readDeadLetters(s)).toHaveLength(0);
  });

  it('counters: events taken back are not counted delivered twice (delivered = read for the first time and handed out)', async (ctx) => {
    const f = fixture(ctx, 60_000);
    const s = f.stream();
    for (let i = 0; i < 10; i++) await s.add('e', `${i}`);
    const sink = await f.sink(s);
    for await (const ev of sink) {
      await ev.ack();
      break;
    }
    const got = await take(sink.subscribe(), 9, WAIT.timeout);
    for (const e of got) await e.ack();
    expect(got.every((e) => e.deliveryCount === 1)).toBe(true);
    expect({ delivered: sink.counters.delivered, redelivered: sink.counters.redelivered, acked: sink.counters.acked }).toEqual({
      delivered: 10,
      redelivered: 0,
      acked: 10,
    });
  });

  it('sink.ack(own event, a copy) rejects, and must not leave the own event settled but never acked', async (ctx) => {
    const f = fixture(ctx, 600);
    const s = f.stream();
    await s.add('e', 'x');
    const sink = await f.sink(s);
    const handled: Array<[string, number]> = [];
    let err: unknown;
    const run = sink.process(async (ev) => {
      handled.push([ev.id, ev.deliveryCount]);
      if (ev.deliveryCount === 1) {
        try {
          await sink.ack(ev, { id: ev.id, streamName: ev.streamName } as never);
        } catch (e) {
          err = e;
        }
      }
    });
    await waitFor(() => err !== undefined, { ...WAIT, what: 'the ack rejected' });
    expect(err).toBeInstanceOf(InvalidArgumentError);
    // The handler returned normally: process() acks its event (the ack that rejected sent nothing),
    // so it is never dead-lettered (SEMANTICS.md section 9) nor redelivered.
    await stays(async () => (await readDeadLetters(s)).length === 0, 2000, 'the finished event is not dead-lettered');
    expect({ pending: await counts(s.key), handled: handled.length }).toEqual({ pending: [], handled: 1 });
    await sink.close();
    await run;
  });
});
