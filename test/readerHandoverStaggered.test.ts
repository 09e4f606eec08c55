/**
 * A reader's subscriptions joining and leaving in staggered orders (outside
 * review G of this session's handover fix): two successive handovers gave a
 * late subscription the same events twice, and events handed over after it
 * had taken later ones came out of stream order. Now a subscription gets a
 * leaving sibling's unread events only when it never had them and has taken
 * nothing since (a warning says how many it does not get otherwise): each
 * gets every event from its join on once, in order.
 */
import { describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, take, uniqueName, waitFor } from './support/clients.js';

const payload = (e: Event) => String(e.payload);

const drain = async (sub: AsyncIterator<Event>, max: number, ms = 800): Promise<string[]> => {
  const out: string[] = [];
  while (out.length < max) {
    const r = await nextWithin(sub, ms);
    if (r === 'timeout' || r.done) break;
    out.push(payload(r.value));
  }
  return out;
};

describe.concurrent.each(CLIENT_KINDS)('reader handover (%s)', (kind) => {
  it('two successive handovers give a late subscription the same events twice', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('dup'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const a = reader.subscribe(); // joins at 0, never takes
    for (let i = 0; i < 3; i++) await s.add('e', `e${i}`);
    await waitFor(() => reader.counters.delivered === 3, { what: '3 read' });
    const mid = reader.subscribe(); // joins after e0..e2
    for (let i = 3; i < 5; i++) await s.add('e', `e${i}`);
    await waitFor(() => reader.counters.delivered === 5, { what: '5 read' });
    const late = reader.subscribe(); // joins after e0..e4
    reader.unsubscribe(a); // mid gets e0..e2 ahead of e3,e4; late gets e0..e4
    reader.unsubscribe(mid); // mid's buffer e0..e4: late already has them
    await s.add('e', 'e5');
    expect(await drain(late, 20)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
  });

  it('events handed over after the subscription took later ones arrive out of stream order', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('order'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const a = reader.subscribe();
    for (let i = 0; i < 5; i++) await s.add('e', `e${i}`);
    await waitFor(() => reader.counters.delivered === 5, { what: '5 read' });
    const b = reader.subscribe();
    await s.add('e', 'e5');
    await s.add('e', 'e6');
    const first = (await take(b, 2)).map(payload);
    reader.unsubscribe(a);
    await s.add('e', 'e7');
    const rest = await drain(b, 20);
    const got = [...first, ...rest];
    // Whatever b gets, it must come in stream order, each once.
    const idx = got.map((p) => Number(p.slice(1)));
    expect({ got, ordered: idx.every((v, i) => i === 0 || v > (idx[i - 1] as number)) }).toEqual({ got, ordered: true });
  });

  it('the same late subscription handed over by two leavers while it waits in concurrent next() calls', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('wait'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const a = reader.subscribe();
    for (let i = 0; i < 2; i++) await s.add('e', `e${i}`);
    await waitFor(() => reader.counters.delivered === 2, { what: '2 read' });
    const mid = reader.subscribe();
    await s.add('e', 'e2');
    await waitFor(() => reader.counters.delivered === 3, { what: '3 read' });
    const late = reader.subscribe();
    const waits = [late.next(), late.next(), late.next()];
    reader.unsubscribe(a);
    reader.unsubscribe(mid);
    const first = (await Promise.all(waits)).map((r) => (r.done ? 'done' : payload(r.value)));
    await s.add('e', 'e3');
    const rest = await drain(late, 20);
    expect([...first, ...rest]).toEqual(['e0', 'e1', 'e2', 'e3']);
  });
});
