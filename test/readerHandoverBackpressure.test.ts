/**
 * A reader's handover under backpressure and to concurrent waiters (outside
 * review G): a full buffer handed over still pauses reading and every event
 * comes once, in order; waiters in concurrent next() calls get the handed
 * over events in order; an aborted signal hands over as unsubscribe does.
 */
import { describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, uniqueName, waitFor } from './support/clients.js';

const payload = (e: Event) => String(e.payload);

describe.concurrent.each(CLIENT_KINDS)('reader handover under backpressure (%s)', (kind) => {
  it('a full buffer handed over pauses reading, then every event comes once, in order', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('bp'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    for (let i = 0; i < 30; i++) await s.add('e', `e${i}`);
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100, bufferSize: 4, maxPolled: 2 });
    ctx.onTestFinished(() => reader.close());
    const a = reader.subscribe();
    await waitFor(() => reader.counters.delivered >= 4, { what: 'a full' });
    const d0 = reader.counters.delivered;
    const b = reader.subscribe();
    reader.unsubscribe(a);
    const got: string[] = [];
    for (;;) {
      const r = await nextWithin(b, 1500);
      if (r === 'timeout' || r.done) break;
      got.push(payload(r.value));
      if (got.length >= 40) break;
    }
    expect({ d0ok: d0 <= 6, got }).toEqual({ d0ok: true, got: Array.from({ length: 30 }, (_, i) => `e${i}`) });
    expect(reader.counters.delivered).toBe(30);
  });

  it('concurrent next() calls of a late subscription get the handed-over events in order', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('wait2'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const a = reader.subscribe();
    for (let i = 0; i < 3; i++) await s.add('e', `e${i}`);
    await waitFor(() => reader.counters.delivered === 3, { what: '3 read' });
    const late = reader.subscribe();
    const waits = [late.next(), late.next(), late.next(), late.next()];
    reader.unsubscribe(a);
    await s.add('e', 'e3');
    const got = (await Promise.all(waits)).map((r) => (r.done ? 'done' : payload(r.value)));
    expect(got).toEqual(['e0', 'e1', 'e2', 'e3']);
  });

  it('an aborted signal of the old subscription during a read in flight hands over as unsubscribe does', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('ab'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 2000 });
    ctx.onTestFinished(() => reader.close());
    const ac = new AbortController();
    const a = reader.subscribe({ signal: ac.signal });
    for (let i = 0; i < 3; i++) await s.add('e', `e${i}`);
    await waitFor(() => reader.counters.delivered === 3, { what: '3 read' });
    const late = reader.subscribe();
    ac.abort(); // a read (BLOCK 2000) is in flight
    await s.add('e', 'e3');
    const got: string[] = [];
    for (;;) {
      const r = await nextWithin(late, 2500);
      if (r === 'timeout' || r.done) break;
      got.push(payload(r.value));
      if (got.length >= 10) break;
    }
    expect({ got, aDone: (await a.next()).done }).toEqual({ got: ['e0', 'e1', 'e2', 'e3'], aDone: true });
  });
});
