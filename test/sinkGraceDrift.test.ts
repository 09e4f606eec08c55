/**
 * Instances of one sink with different `ackGracePeriodMs` (outside review A:
 * a rolling deploy that changes the option is ordinary, and nothing says the
 * instances of a sink must share it). Checks, with both clients, that:
 * - a short-grace instance does not take an event a long-grace one still
 *   handles (process()) or buffers: it waits for the longest grace period
 *   of the live instances holding events on the stream (was: its own, so
 *   events were handled twice);
 * - nack and retry delays hold whatever the grace periods of the instances
 *   that claim (they were told as idle = grace - delay: early or late by the
 *   difference), measured on the Redis clock with a tolerance;
 * - a short-grace instance neither forgets a long-grace one nor calls it
 *   stale (false "record of live sink instances was lost" warnings), and
 *   says once that the grace periods differ where it matters (the other
 *   holds events on a stream it reads).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, stays, take, waitFor } from './support/clients.js';
import { sinkInstances } from './support/sinkInstances.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Tolerance of a delay measured on the Redis clock (a claim wakes in 10 ms
 * buckets; a loaded CI worker: 405 ms late once with ten test files at a
 * time on two cores). The defect these bounds catch is late by the
 * difference of the grace periods, 1800 ms and more here.
 */
const LATE_MS = 1000;

describe.concurrent.each(CLIENT_KINDS)('sink instances with different grace periods (%s)', (kind) => {
  /** One stream, a sink name of its own (the sink-wide liveness record is per name), instances with their own loggers. */
  async function setup(ctx: TestContext) {
    const { c, name, sinkName, instance } = await sinkInstances(ctx, kind, 'graceDrift');
    const serverMs = async (): Promise<number> => {
      const [s, us] = (await c.cmd('TIME')) as [string, string];
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    };
    /** Waits until `sink`'s instance saw `n` live instances of the sink (its beat knows the other's grace period). */
    const instances = (n: number) =>
      waitFor(async () => ((await c.cmd('ZCARD', `{pulse:sink:${sinkName}}:instances`)) as number) >= n, {
        what: `${n} live instances`,
      });
    return { c, name, instance, serverMs, instances };
  }

  // The longest test first: the file's tests run five at a time (vitest's maxConcurrency), both clients'
  // blocks at once, so a long test left last kept the file busy on its own.
  it('grace periods far apart: no false warnings, no stale sweeps, one warning that they differ', async (ctx) => {
    const t = await setup(ctx);
    // B holds an event on the stream both read: where the difference changes claims, so A says so.
    const b = await t.instance({ ackGracePeriodMs: 3000 });
    const subB = b.sink.subscribe();
    await b.s.add('e', 'x');
    const [held] = await take(subB, 1);
    const a = await t.instance({ ackGracePeriodMs: 100 });
    void a.sink.subscribe();
    const msgs = (r: typeof a.rec, level: string) => r.lines.filter((l) => l.level === level).map((l) => l.msg ?? '');
    // A forgot B after 20 of its grace periods (2 s); B noticed at its next beat (every 1.5 s).
    await stays(
      () =>
        !msgs(b.rec, 'warn').some((m) => m.includes('record of live sink instances was lost')) &&
        !msgs(a.rec, 'info').some((m) => m.includes('went stale')),
      3500,
      'no lost record, nobody stale',
    );
    const differ = (r: typeof a.rec) => msgs(r, 'warn').filter((m) => m.includes('different ackGracePeriodMs'));
    expect(differ(a.rec)).toHaveLength(1);
    // B says so once too if A holds events on it meanwhile (it may read none of them).
    expect(differ(b.rec).length).toBeLessThanOrEqual(1);
    expect(held?.deliveryCount).toBe(1);
    await held?.ack();
  });

  it('a short-grace instance does not take the event a long-grace one still handles', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({ ackGracePeriodMs: 3000 });
    const seen: Array<{ who: string; count: number }> = [];
    const acA = new AbortController();
    const acB = new AbortController();
    ctx.onTestFinished(() => {
      acA.abort();
      acB.abort();
    });
    let started = false;
    const doneA = a.sink.process(
      async (ev) => {
        seen.push({ who: 'A', count: ev.deliveryCount });
        started = true;
        // The handler's work: longer than B's grace period many times, within A's (touched every second).
        await sleep(2500);
      },
      { signal: acA.signal },
    );
    await a.s.add('e', 'x');
    await waitFor(() => started, { what: 'A handling' });
    const b = await t.instance({ ackGracePeriodMs: 200 });
    const doneB = b.sink.process(
      async (ev) => {
        seen.push({ who: 'B', count: ev.deliveryCount });
      },
      { signal: acB.signal },
    );
    await waitFor(() => a.sink.counters.acked === 1, { timeout: 8000, what: 'A acked' });
    expect(seen).toEqual([{ who: 'A', count: 1 }]);
    expect(a.sink.counters.staleAcks).toBe(0);
    expect(b.sink.counters.delivered + b.sink.counters.redelivered).toBe(0);
    acA.abort();
    acB.abort();
    await Promise.all([doneA, doneB]);
  });

  it('a short-grace instance does not take events a long-grace one buffers: each handled once', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({ ackGracePeriodMs: 3000 });
    const handled: string[] = [];
    const counts: number[] = [];
    const acA = new AbortController();
    const acB = new AbortController();
    ctx.onTestFinished(() => {
      acA.abort();
      acB.abort();
    });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await a.s.add('e', String(i))) as string);
    const handler = async (ev: SinkEvent) => {
      handled.push(ev.id);
      counts.push(ev.deliveryCount);
      await sleep(350);
    };
    const doneA = a.sink.process(handler, { concurrency: 1, signal: acA.signal });
    await waitFor(() => handled.length === 1, { what: 'A started' });
    const b = await t.instance({ ackGracePeriodMs: 200 });
    const doneB = b.sink.process(handler, { signal: acB.signal });
    await waitFor(() => a.sink.counters.acked + b.sink.counters.acked >= 6, { timeout: 8000, what: 'all acked' });
    expect([...handled].sort()).toEqual([...ids].sort());
    expect(counts.every((n) => n === 1)).toBe(true);
    expect(a.sink.counters.staleAcks + b.sink.counters.staleAcks).toBe(0);
    acA.abort();
    acB.abort();
    await Promise.all([doneA, doneB]);
  });

  it('a nack delay holds with a short-grace instance live', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({ ackGracePeriodMs: 2000 });
    const subA = a.sink.subscribe();
    await a.s.add('e', 'x');
    const [ev] = await take(subA, 1);
    const b = await t.instance({ ackGracePeriodMs: 200 });
    await t.instances(2);
    const gotB: SinkEvent[] = [];
    void collect(b.sink.subscribe(), gotB, true);
    const at = await t.serverMs();
    await ev?.nack({ delayMs: 1000 });
    const again = await Promise.race([
      take(subA, 1, 5000).then((e) => e[0]),
      waitFor(() => gotB[0], { timeout: 5000, what: 'redelivery' }),
    ]);
    const after = (await t.serverMs()) - at;
    // Which instance took it, and their counters: a full run once saw it 2.6 s after the nack.
    const who = `${again === gotB[0] ? 'B (200 ms grace)' : 'A (2000 ms grace)'}; A ${JSON.stringify(a.sink.counters)}; B ${JSON.stringify(b.sink.counters)}`;
    expect(again?.deliveryCount, who).toBe(2);
    expect(after, who).toBeGreaterThanOrEqual(1000 - 5);
    expect(after, who).toBeLessThan(1000 + LATE_MS);
    await again?.ack();
  });

  it('a process() retry delay holds with a short-grace instance live', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({ ackGracePeriodMs: 3000 });
    const times: number[] = [];
    const acs = [new AbortController(), new AbortController()];
    ctx.onTestFinished(() => {
      for (const ac of acs) ac.abort();
    });
    const handler = async (ev: SinkEvent) => {
      times.push(await t.serverMs());
      if (ev.deliveryCount === 1) throw new Error('first try fails');
    };
    const retry = { delayMs: 800, factor: 1, maxDelayMs: 800, jitter: 0 };
    const done = [a.sink.process(handler, { retry, signal: acs[0]?.signal })];
    await a.s.add('e', 'x');
    // A's first try fails and its retry waits: B, with a short grace period, must not take it meanwhile.
    await waitFor(() => times.length === 1, { what: 'first try' });
    const b = await t.instance({ ackGracePeriodMs: 200 });
    done.push(b.sink.process(handler, { retry, signal: acs[1]?.signal }));
    await waitFor(() => a.sink.counters.acked + b.sink.counters.acked === 1, { timeout: 5000, what: 'acked' });
    expect(times).toHaveLength(2);
    const gap = (times[1] ?? 0) - (times[0] ?? 0);
    expect(gap).toBeGreaterThanOrEqual(800 - 5);
    expect(gap).toBeLessThan(800 + LATE_MS);
    for (const ac of acs) ac.abort();
    await Promise.all(done);
  });

  it('nack({delayMs: 0}) under a short grace period: at once on an instance started with a longer one', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({ ackGracePeriodMs: 200 });
    const subA = a.sink.subscribe();
    await a.s.add('e', 'x');
    const [ev] = await take(subA, 1);
    // No subscriber left on A: it cannot take the event back itself before it closes (then it would
    // give it back unseen, idle 0, for B's grace period: right, but not what this test is about).
    await subA.return();
    await ev?.nack({ delayMs: 0 });
    await a.sink.close();
    const at = await t.serverMs();
    const b = await t.instance({ ackGracePeriodMs: 3000 });
    const [again] = await take(b.sink.subscribe(), 1, 5000);
    expect(again?.deliveryCount).toBe(2);
    expect((await t.serverMs()) - at).toBeLessThan(1000);
    await again?.ack();
  });

  it('a nack delay longer than the grace period: kept to within ms by an instance started with a longer one', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({ ackGracePeriodMs: 300 });
    const subA = a.sink.subscribe();
    await a.s.add('e', 'x');
    const [ev] = await take(subA, 1);
    const at = await t.serverMs();
    await ev?.nack({ delayMs: 1500 });
    await a.sink.close();
    const b = await t.instance({ ackGracePeriodMs: 4000 });
    // On a loaded machine A's close() and B's start may take past the due time: B claims it at once then.
    const started = (await t.serverMs()) - at;
    const [again] = await take(b.sink.subscribe(), 1, 6000);
    const after = (await t.serverMs()) - at;
    expect(again?.deliveryCount).toBe(2);
    expect(after).toBeGreaterThanOrEqual(1500 - 5);
    expect(after).toBeLessThan(Math.max(1500, started) + LATE_MS);
    await again?.ack();
  });
});
