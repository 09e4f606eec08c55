/**
 * Every subscription of an instance stalled, so it read on into the stalled
 * buffer; then a second subscription came and was busy (a process() whose
 * handler is slow). The stalled buffer was never released (only a hungry
 * sibling stole from it): its events were not held, so after the grace period
 * they were claimed with deliveryCount 2 and, with maxDeliveries 1,
 * dead-lettered though no code saw them (an outside review). What stalled
 * subscriptions hold goes to a live one as it comes, wakes, or at the next
 * hold tick; and since 2026-12-07 an instance whose subscriptions all stalled
 * reads nothing (sinkSlowness.test.ts): the events wait in the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, stays, type TestClient, uniqueName, waitFor } from './support/clients.js';

const GRACE = 1000;

// The two clients' cases run at once (each on a stream of its own): most of each is the busy
// sibling's 3 grace periods, the window the defect needs; one after the other the file kept a
// worker ~8.7 s.
describe.concurrent.each(CLIENT_KINDS)('stalled buffer beside a busy sibling (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('events read into a stalled buffer are not dead-lettered unseen (maxDeliveries 1)', async () => {
    const { logger } = recordingLogger();
    const s = new Stream(uniqueName('share-stbuf'), c.redis, { logger });
    const sink = await s.newSink('g', {
      startAt: 'oldest',
      blockMs: 100,
      ackGracePeriodMs: GRACE,
      bufferSize: 10,
      maxPolled: 10,
      maxDeliveries: 1,
    });
    const dead = async () => Number(await c.cmd('XLEN', `pulse:stream:${s.name}:dead`));
    const handled: Array<{ id: string; count: number }> = [];
    const stop = new AbortController();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let p: Promise<void> | undefined;
    try {
      const a = sink.subscribe();
      await s.add('e', 'x');
      const x = (await a.next()).value as SinkEvent;
      await x.ack();
      // a takes nothing more: after a grace period it is stalled (every subscription is).
      await waitFor(() => (a as unknown as { stalled: boolean }).stalled, { timeout: 5 * GRACE, what: 'a stalled' });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await s.add('e', `${i}`)) as string);
      // Not read into the stalled buffer: the sink reads nothing while every subscription is
      // stalled, and what the read out then brings is given back (delivery count 0).
      const pel = async () => (await c.cmd('XPENDING', s.key, 'g', '-', '+', 10)) as unknown[][];
      await stays(
        async () => a.size === 0 && (await pel()).every((e) => Number(e[3]) === 0),
        500,
        'nothing buffered, nothing counted',
      );
      // b: a process() that stays busy in its first handler for 3 grace periods.
      let first = true;
      p = sink.process(
        async (ev) => {
          handled.push({ id: ev.id, count: ev.deliveryCount });
          if (first) {
            first = false;
            await gate;
          }
        },
        { signal: stop.signal, concurrency: 1 },
      );
      await new Promise((r) => setTimeout(r, 3 * GRACE));
      release();
      await waitFor(async () => new Set(handled.map((h) => h.id)).size + (await dead()) >= 6, {
        timeout: 10_000,
        what: 'all settled',
      });
      expect({
        dead: await dead(),
        notFirst: handled.filter((h) => h.count !== 1),
        counters: { delivered: sink.counters.delivered, redelivered: sink.counters.redelivered },
      }).toEqual({ dead: 0, notFirst: [], counters: { delivered: 7, redelivered: 0 } });
    } finally {
      release();
      stop.abort();
      await p;
      await sink.close();
      await s.destroy().catch(() => {});
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    }
  }, 30_000);
});
