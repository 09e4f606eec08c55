/**
 * A consumer group destroyed by another program while the sink runs (`XGROUP DESTROY`), then the
 * stream trimmed by the producer's own maxLen before the sink meets NOGROUP and recreates the group
 * at 0: what was trimmed in between was never handed to a handler, and must be counted lost
 * (README "Delivery guarantees": acked, dead-lettered or reported lost). Found by a review of
 * restarts and deletes (session 28): "recreated at 0, events may be redelivered" was all it said.
 */
import { describe, it } from 'vitest';
import type { Retention, SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take, waitFor } from './support/clients.js';
import { ackAll, aofSink, untilAccounted } from './support/groupMissing.js';

const CASES = CLIENT_KINDS.flatMap((kind) => (['limits', 'interest'] as Retention[]).map((r) => [kind, r] as const));

describe.concurrent.each(CASES)('group destroyed, then trimmed before it is recreated (%s, %s)', (kind, retention) => {
  it('every event added after the destroy is delivered or counted lost', async (ctx) => {
    const { c, s, sink, lines } = await aofSink(ctx, kind, 'dgt', { maxLen: 10, retention });
    const sub = sink.subscribe();
    await s.add('e', 'first');
    const [first] = (await take(sub, 1)) as [SinkEvent];
    await first.ack();
    // Another program destroys the group; a busy producer's next burst (merged script calls,
    // trimmed to ~maxLen) lands before the sink's blocked read wakes up.
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `b${i}`)));
    const got = ackAll(sub);
    const left = Number(await c.cmd('XLEN', s.key));
    const delivered = (): number => ids.filter((id) => got.has(id)).length;
    await untilAccounted(300, delivered, () => sink.counters.lost, lines, `, xlen ${left}`);
    // Exactly: none of those delivered is also counted lost.
    await waitFor(() => delivered() + sink.counters.lost === 300 && delivered() === left, {
      what: `delivered (${delivered()}) + lost (${sink.counters.lost}) = 300, delivered = what was left (${left})`,
    });
  }, 30_000);
});
