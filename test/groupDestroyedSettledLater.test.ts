/**
 * A group destroyed under a running sink, second review of its accounting (session 28; each failed
 * before, both clients): an event a `for await` loop kept with inProgress() after its entry was
 * trimmed was counted lost as a delayed nack gone, then acked (and, nacked, counted twice); a
 * delayed nack whose event came again from the group made at 0 and was acked stayed in the delays
 * set, and was counted lost at the next destroy once trimmed.
 */
import { describe, expect, it } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take, waitFor } from './support/clients.js';
import { aofSink, warnings } from './support/groupMissing.js';

describe.concurrent.each(CLIENT_KINDS)('group destroyed, events settled later (%s)', (kind) => {
  for (const settle of ['ack', 'nack'] as const) {
    it(`an event kept by inProgress() after its entry was trimmed, then ${settle}ed: counted lost ${settle === 'ack' ? 'never' : 'once'}`, async (ctx) => {
      const { c, s, sink, lines } = await aofSink(ctx, kind, 'rvA');
      const sub = sink.subscribe();
      const id = (await s.add('e', 'held')) as string;
      const [ev] = (await take(sub, 1)) as SinkEvent[];
      expect(ev?.id).toBe(id);
      // A producer's maxLen trims it while the loop works on it; the loop says it is still working.
      await c.cmd('XTRIM', s.key, 'MAXLEN', 0);
      await ev?.inProgress();
      expect(await c.cmd('ZSCORE', `{${s.key}}:sink:g:delays`, id)).not.toBeNull();
      await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
      await s.add('e', 'next');
      await waitFor(() => lines.some((l) => /recreated at 0/.test(String(l.msg))), { what: 'group recreated' });
      if (settle === 'ack') await ev?.ack();
      else await ev?.nack();
      const [next] = (await take(sub, 1)) as SinkEvent[];
      await next?.ack();
      expect(sink.counters.lost, `warn: ${warnings(lines)}`).toBe(settle === 'ack' ? 0 : 1);
    }, 30_000);
  }

  it('a delayed nack that came again from the group made at 0 and was acked is not lost at the next destroy', async (ctx) => {
    const { c, s, sink, lines } = await aofSink(ctx, kind, 'rvF');
    const sub = sink.subscribe();
    const id = (await s.add('e', 'e0')) as string;
    const [ev] = (await take(sub, 1)) as SinkEvent[];
    await ev?.nack({ delayMs: 60_000 });
    // Another program destroys the group: made again at 0, e0 comes again at once and is handled.
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    await s.add('e', 'e1');
    const again = (await take(sub, 2)) as SinkEvent[];
    expect(again.map((e) => e.id)).toContain(id);
    for (const e of again) await e.ack();
    expect(sink.counters.lost).toBe(0);
    // Normal operation: a producer's maxLen trims what was handled; later the group is destroyed again.
    await c.cmd('XTRIM', s.key, 'MAXLEN', 0);
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const last = (await s.add('e', 'e2')) as string;
    const [e2] = (await take(sub, 1)) as SinkEvent[];
    expect(e2?.id).toBe(last);
    await e2?.ack();
    await waitFor(() => lines.filter((l) => /recreated at 0/.test(String(l.msg))).length >= 2, {
      what: 'recreated twice',
    });
    expect(sink.counters.lost, `e0 was acked; warn: ${warnings(lines)}`).toBe(0);
  }, 30_000);
});
