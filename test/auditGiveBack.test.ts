/**
 * Audit: README "Events read but never handed out (... an aborted process() ...) stay pending and go to
 * another consumer after the grace period, but with the delivery count they had before this consumer
 * read them: ... that read neither counts toward maxDeliveries nor shows as a redelivery."
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotOwnedError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const GRACE = 300;

describe.concurrent.each(CLIENT_KINDS)('audit: give back (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('an aborted process(): what it never handed to the handler goes to another instance as first deliveries, none dead-lettered', async () => {
    const s = new Stream(uniqueName('gb'), c.redis, { maxLen: 0 });
    const opts = { blockMs: 100, ackGracePeriodMs: GRACE, maxDeliveries: 1, startAt: 'oldest' as const };
    const a = await s.newSink('g', opts);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await s.add('e', `${i}`));
    const ac = new AbortController();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const handled: string[] = [];
    const run = a.process(
      async (ev) => {
        handled.push(ev.id);
        ac.abort();
        await gate;
      },
      { signal: ac.signal },
    );
    await waitFor(() => handled.length === 1, { what: 'first handler' });
    release();
    await run;
    expect(handled).toEqual([ids[0]]);
    const b = await s.newSink('g', opts);
    try {
      const got: SinkEvent[] = [];
      const done = collect(b.subscribe(), got, true);
      await waitFor(() => got.length === 9, { timeout: 10_000, what: '9 events at the other instance' });
      expect(got.map((e) => e.id).sort()).toEqual(ids.slice(1).sort());
      expect(got.every((e) => e.deliveryCount === 1)).toBe(true);
      expect(a.counters.deadLettered + b.counters.deadLettered).toBe(0);
      expect(b.counters.redelivered).toBe(0);
      expect(Number(await c.cmd('XLEN', `pulse:stream:${s.name}:dead`))).toBe(0);
      await b.close();
      await done;
    } finally {
      await a.close();
      await b.close();
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    }
  });

  it('TSDoc inProgress(): rejects with NotOwnedError once this consumer acked the event itself', async () => {
    const s = new Stream(uniqueName('gb'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    try {
      const sub = sink.subscribe();
      await s.add('e', 'x');
      const [ev] = (await take(sub, 1)) as [SinkEvent];
      await ev.inProgress();
      await ev.ack();
      await expect(ev.inProgress()).rejects.toBeInstanceOf(NotOwnedError);
    } finally {
      await sink.close();
      await s.destroy();
    }
  });
});
