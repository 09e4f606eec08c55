/**
 * A reader's subscription replaced "new first, then old" (a loop restarted:
 * the new subscription opened before the old one is left) skipped what the
 * old one had buffered (outside review F of 2026-12-05): the cursor is past
 * those events, the old subscription dropped them because another one was
 * there, but that one joined after they were read and never had them, while
 * counters.delivered counted them. Now a subscription that joined after some
 * of a leaving one's buffered events were read gets those, ahead of its own;
 * one that had them gets nothing twice.
 */
import { describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';

const payload = (e: Event) => String(e.payload);

describe.concurrent.each(CLIENT_KINDS)('reader subscription handover (%s)', (kind) => {
  it('opening the new subscription before leaving the old one skips nothing', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('handover'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    for (let i = 0; i < 10; i++) await s.add('e', `e${i}`);
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const old = reader.subscribe();
    const first = await take(old, 1);
    // The read brought all 10: 9 wait in the old subscription's buffer.
    await waitFor(() => reader.counters.delivered === 10, { what: '10 read' });
    const next = reader.subscribe();
    reader.unsubscribe(old);
    await s.add('e', 'e10');
    const got: string[] = [];
    for (;;) {
      const r = await nextWithin(next, 1500);
      if (r === 'timeout' || r.done) break;
      got.push(payload(r.value));
      if (got.length >= 10) break;
    }
    expect({ first: first.map(payload), got, delivered: reader.counters.delivered }).toEqual({
      first: ['e0'],
      got: ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e10'],
      delivered: 11,
    });
  });
  it('a sibling that had the events gets none twice; only the one that joined later gets what it missed', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('handover'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    for (let i = 0; i < 6; i++) await s.add('e', `e${i}`);
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const old = reader.subscribe();
    const early = reader.subscribe();
    await take(old, 2);
    await waitFor(() => reader.counters.delivered === 6, { what: '6 read' });
    const late = reader.subscribe();
    reader.unsubscribe(old);
    await s.add('e', 'e6');
    const drain = async (sub: AsyncIterator<Event>, n: number): Promise<string[]> => {
      const out: string[] = [];
      while (out.length < n) {
        const r = await nextWithin(sub, 1500);
        if (r === 'timeout' || r.done) break;
        out.push(payload(r.value));
      }
      return out;
    };
    // early had all 7 (it joined before the reads); late missed e2..e5 (old's buffer), then gets e6.
    expect(await drain(early, 7)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
    expect(await drain(late, 5)).toEqual(['e2', 'e3', 'e4', 'e5', 'e6']);
    // Nothing more for either: the next event is the first after e6 for both.
    await s.add('e', 'e7');
    expect([await drain(early, 1), await drain(late, 1)]).toEqual([['e7'], ['e7']]);
    expect(reader.counters.delivered).toBe(8);
  });
  it('one that took later events already does not get them, and a warn line says how many', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('handover'), c.redis, { logger });
    ctx.onTestFinished(() => s.destroy());
    for (let i = 0; i < 3; i++) await s.add('e', `e${i}`);
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const old = reader.subscribe();
    await waitFor(() => reader.counters.delivered === 3, { what: '3 read' });
    const next = reader.subscribe();
    await s.add('e', 'e3');
    expect((await take(next, 1)).map(payload)).toEqual(['e3']);
    reader.unsubscribe(old);
    await s.add('e', 'e4');
    expect((await take(next, 1)).map(payload)).toEqual(['e4']);
    const warned = lines.filter((l) => l.level === 'warn' && /cannot have in order/.test(l.msg ?? ''));
    expect(warned.map((l) => (l.obj as { count?: number }).count)).toEqual([3]);
  });
});
