/**
 * A group destroyed and the stream trimmed while a handler holds events: nacked after the group is
 * made again, they are counted lost (they were dropped without a word: review of the NOGROUP
 * accounting, session 28).
 */
import { describe, expect, it } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take, waitFor } from './support/clients.js';
import { ackAll, aofSink, untilAccounted } from './support/groupMissing.js';

describe.concurrent.each(CLIENT_KINDS)('group destroyed and trimmed while a handler holds events (%s)', (kind) => {
  for (const checked of [true, false]) {
    it(`nacked after the group is made again: counted lost (${checked ? 'read before the last check' : 'read after it'})`, async (ctx) => {
      const { c, s, sink, lines } = await aofSink(ctx, kind, 'nad', { maxLen: 10 });
      const sub = sink.subscribe();
      const held = await Promise.all(Array.from({ length: 5 }, (_, i) => s.add('e', `held${i}`)));
      const evs = (await take(sub, 5)) as SinkEvent[];
      const last = held[held.length - 1] as string;
      if (checked)
        await waitFor(async () => String(await c.cmd('HGET', `{${s.key}}:positions`, 'g')).startsWith(`${last} `), {
          what: 'a trim check after the reads',
        });
      await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
      const more = await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `m${i}`)));
      const got = ackAll(sub);
      const xlen = Number(await c.cmd('XLEN', s.key));
      const delivered = (): number => more.filter((id) => got.has(id)).length;
      await waitFor(() => delivered() === xlen, { timeout: 8000, what: 'what is left delivered' });
      // The held events are out of the stream now; their handler fails.
      for (const ev of evs) await ev.nack();
      await untilAccounted(305, delivered, () => sink.counters.lost, lines, ` (want ${305 - xlen} lost)`);
      expect(sink.counters.lost).toBe(305 - xlen);
    }, 30_000);
  }
});
