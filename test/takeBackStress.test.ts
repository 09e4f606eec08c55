/**
 * Review of the take-back change (2857d77): two instances of one sink, each
 * running process() that is aborted and started again at random, with a
 * short grace period, while a producer adds. Contract (SEMANTICS.md section
 * 4): every event handled; a second handling only as a redelivery
 * (deliveryCount > 1); nothing dead-lettered that no handler saw fail; a
 * handled event never dead-lettered.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { readDeadLetters, type Sink } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor, within } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

describe.concurrent.each(CLIENT_KINDS)('review: take back under churn, two instances (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('process() aborted and restarted at random on two instances', { timeout: 60_000 }, async (ctx: TestContext) => {
    const f = sinkFixture(ctx, c, 'rvstress', { ackGracePeriodMs: 1500, maxDeliveries: 2, bufferSize: 20, maxPolled: 10 });
    const s = f.stream();
    const sinks = [await f.sink(s), await f.sink(s)];
    const handled: Array<{ p: string; n: number; who: number }> = [];
    let stopAll = false;
    const churn = async (sink: Sink, who: number) => {
      let round = 0;
      while (!stopAll) {
        round++;
        const stop = new AbortController();
        const quota = 1 + ((round * 7 + who) % 11);
        let mine = 0;
        const run = sink.process(
          async (ev) => {
            handled.push({ p: ev.text(), n: ev.deliveryCount, who });
            if (++mine >= quota) stop.abort();
            if (mine % 3 === 0) await new Promise((r) => setTimeout(r, (mine * 13) % 40));
          },
          { signal: stop.signal, concurrency: 1 + (round % 3) },
        );
        const t = setTimeout(() => stop.abort(), 50 + ((round * 37) % 400));
        await within(run, 10_000, `process round ${round}`);
        clearTimeout(t);
      }
    };
    const runs = sinks.map((sink, i) => churn(sink, i));
    const added: string[] = [];
    for (let i = 0; i < 600; i++) {
      await s.add('e', `${i}`);
      added.push(`${i}`);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(
      () => {
        const seen = new Set(handled.map((h) => h.p));
        return added.every((p) => seen.has(p));
      },
      { timeout: 40_000, what: 'all handled' },
    );
    stopAll = true;
    await Promise.all(runs);
    const byP = new Map<string, number[]>();
    for (const h of handled) byP.set(h.p, [...(byP.get(h.p) ?? []), h.n]);
    // A second handling must say it is a redelivery.
    const bad = [...byP].filter(([, ns]) => ns.length > 1 && ns.slice(1).some((n) => n <= 1));
    const dead = await readDeadLetters(s);
    expect({ badDuplicates: bad.slice(0, 10), dead: dead.length }).toEqual({ badDuplicates: [], dead: 0 });
    expect(sinks.map((x) => x.counters.deadLettered)).toEqual([0, 0]);
  });
});
