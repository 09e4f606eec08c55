/**
 * counters.delivered counts events read for the first time and handed to
 * subscribers: an event given back unseen (counted when read) and then
 * claimed back by the same instance after the take-back window counted twice
 * before (found by a review); a give-back now counts it out again.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, waitFor } from './support/clients.js';
import { env } from './support/fatalEnv.js';

describe.each(CLIENT_KINDS)('counters after a give-back claimed back (%s)', (kind) => {
  it('counters.delivered counts an event handed out once only once', async (ctx) => {
    const e = await env(ctx, kind);
    const s = new Stream(e.name, e.admin.redis, { logger: e.logger });
    for (let i = 0; i < 3; i++) await s.add('e', `${i}`);
    const grace = 500;
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: grace, startAt: 'oldest' });
    e.defer(() => sink.close());
    const handed: string[] = [];
    for await (const ev of sink) {
      handed.push(ev.id);
      await ev.ack();
      break;
    }
    await waitFor(() => e.lines.some((l) => l.msg?.startsWith('events never handed out given back')), { what: 'given back' });
    // Past the take-back window (a grace period): what comes now, comes by a claim.
    await new Promise((r) => setTimeout(r, grace * 3));
    for await (const ev of sink as AsyncIterable<SinkEvent>) {
      handed.push(ev.id);
      await ev.ack();
      if (handed.length === 3) break;
    }
    expect({ handed: handed.length, delivered: sink.counters.delivered + sink.counters.redelivered }).toEqual({
      handed: 3,
      delivered: 3,
    });
  }, 20_000);
});
