/**
 * The dead letter of an event that does not decode (process()/processBatch() on a typed
 * stream) is one script on a single node. It adds the event to the dead-letter stream before
 * it acks it: when that XADD fails (dead-letter key of another type: WRONGTYPE), Lua does not
 * roll back, and an ack first would leave the event acked and in no stream, lost silently.
 * The event stays pending instead, and a refusal no retry fixes ends process() with it.
 */
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, waitFor, within } from './support/clients.js';
import { env, rejectionOf } from './support/fatalEnv.js';

const GRACE = 500;
type Events = { e: { id: number } };

describe.concurrent.each(CLIENT_KINDS)('dead letter of an undecodable event that fails (%s)', (kind) => {
  it('dead-letter key is a string (WRONGTYPE): the event stays pending (as the warn says), it is not acked and dropped', async (ctx) => {
    const e = await env(ctx, kind);
    const s = new Stream<Events>(e.name, e.admin.redis, { logger: e.logger, codec: 'json' });
    await e.admin.cmd('SET', `${s.key}:dead`, 'not a stream');
    await e.admin.cmd('XADD', s.key, '*', 'n', 'e', 'p', 'not json');
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
    e.defer(() => within(sink.close(), 5000, 'close'));
    // It ends with the WRONGTYPE error (the next test): caught at once, not left unhandled.
    const run = sink.process(async () => {}).catch(() => {});
    e.defer(() => within(run, 5000, 'process'));
    await waitFor(() => e.lines.some((l) => /does not decode failed/.test(String(l.msg))), {
      timeout: 5000,
      what: 'the failed dead letter',
    });
    const pending = Number(((await e.admin.cmd('XPENDING', s.key, 'g')) as unknown[])[0]);
    expect({ pending, lost: sink.counters.lost, deadLettered: sink.counters.deadLettered }).toEqual({
      pending: 1,
      lost: 0,
      deadLettered: 0,
    });
  });

  it('dead-letter key is a string (WRONGTYPE): process() ends with a WRONGTYPE PulseError, as README says', async (ctx) => {
    const e = await env(ctx, kind);
    const s = new Stream<Events>(e.name, e.admin.redis, { logger: e.logger, codec: 'json' });
    await e.admin.cmd('SET', `${s.key}:dead`, 'not a stream');
    await e.admin.cmd('XADD', s.key, '*', 'n', 'e', 'p', 'not json');
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
    e.defer(() => within(sink.close(), 5000, 'close'));
    const err = await rejectionOf(
      sink.process(async () => {}),
      10 * GRACE,
      'process',
    );
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('WRONGTYPE');
    // The sink ends with it, as when its background work meets such a refusal.
    expect(sink.isClosed()).toBe(true);
  });
});
