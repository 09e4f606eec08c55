/**
 * Events of a stream removed from a reader are not handed to a subscription
 * that joined after the removal (outside review G): kept events of that
 * stream were dropped by removeStream, handed-over ones were not.
 */
import { describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, uniqueName, waitFor } from './support/clients.js';

const payload = (e: Event) => `${e.streamName === undefined ? '' : ''}${String(e.payload)}`;

describe.concurrent.each(CLIENT_KINDS)('reader removeStream + handover (%s)', (kind) => {
  it('a subscription that joined after removeStream(s2) gets no event of s2', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s1 = new Stream(uniqueName('rs1'), c.redis);
    const s2 = new Stream(uniqueName('rs2'), c.redis);
    ctx.onTestFinished(() => s1.destroy());
    ctx.onTestFinished(() => s2.destroy());
    const reader = await s1.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    await reader.addStream(s2, { startAt: 'oldest' });
    const a = reader.subscribe();
    for (let i = 0; i < 3; i++) await s2.add('e', `s2e${i}`);
    await waitFor(() => reader.counters.delivered === 3, { what: '3 read' });
    await reader.removeStream(s2);
    const b = reader.subscribe();
    reader.unsubscribe(a);
    await s1.add('e', 's1e0');
    const got: string[] = [];
    for (;;) {
      const r = await nextWithin(b, 1000);
      if (r === 'timeout' || r.done) break;
      got.push(payload(r.value));
      if (got.length >= 10) break;
    }
    expect(got).toEqual(['s1e0']);
  });
});
