/**
 * A group destroyed and the stream trimmed under buffered events whose subscription then stalls:
 * the events given back are counted lost, not dropped (review of the NOGROUP accounting, session 28).
 */
import { describe, expect, it } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, waitFor } from './support/clients.js';
import { ackAll, aofSink, untilAccounted } from './support/groupMissing.js';

describe.concurrent.each(CLIENT_KINDS)('group destroyed and trimmed under buffered events (%s)', (kind) => {
  it('each buffered event is delivered or counted lost', async (ctx) => {
    const { c, s, sink, lines } = await aofSink(ctx, kind, 'bad', { maxLen: 10 });
    const sub = sink.subscribe() as AsyncIterable<SinkEvent>;
    const first = await Promise.all(Array.from({ length: 50 }, (_, i) => s.add('e', `b${i}`)));
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 50, {
      what: '50 read into the buffer',
    });
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const more = await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `m${i}`)));
    await waitFor(() => lines.some((l) => /recreated at 0/.test(String(l.msg))), { what: 'group recreated' });
    // Its subscription takes nothing for a grace period (1 s): its buffered events are given back.
    await waitFor(() => lines.some((l) => /took no event for a grace period/.test(String(l.msg))), {
      timeout: 8000,
      what: 'the buffered events given back',
    });
    const got = ackAll(sub);
    const all = [...first, ...more];
    const delivered = (): number => all.filter((id) => got.has(id)).length;
    await untilAccounted(350, delivered, () => sink.counters.lost, lines);
    expect(delivered() + sink.counters.lost).toBe(350);
  }, 30_000);
});
