/**
 * node-redis `commandsQueueMaxLength`: an add the client refuses because its
 * queue is full ("The queue is full", rejected before it is queued) rejects
 * with ADD_NOT_SENT, as the README promises for an add "the client gave up
 * on before writing it", and nothing is stored. Outside review M: such adds
 * said ADD_OUTCOME_UNKNOWN ("the event may or may not be stored"), leaving
 * the user to reconcile events certainly not stored.
 */
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName } from './support/clients.js';

describe('node-redis commandsQueueMaxLength', () => {
  it('adds refused by a full client queue are ADD_NOT_SENT, not ADD_OUTCOME_UNKNOWN', async () => {
    const c = createClient({ url: sharedUrl(), commandsQueueMaxLength: 5 });
    c.on('error', () => {});
    await c.connect();
    try {
      // Adds to different streams in one tick go out as separate commands: more than the queue holds.
      const streams = Array.from({ length: 10 }, () => new Stream(uniqueName('qfull'), c));
      const results = await Promise.allSettled(streams.map((s) => s.add('e', 'x')));
      const refused = results.flatMap((r, i) =>
        r.status === 'rejected' ? [{ err: r.reason as PulseError, s: streams[i] as Stream }] : [],
      );
      expect(refused.length).toBeGreaterThan(0);
      for (const { err, s } of refused) {
        expect(err).toBeInstanceOf(PulseError);
        expect(String(err.message)).toMatch(/queue is full/);
        // Never written: nothing was stored.
        expect(await c.sendCommand(['EXISTS', `pulse:stream:${s.name}`])).toBe(0);
        expect(err.code).toBe('ADD_NOT_SENT');
      }
      for (const s of streams) await s.destroy();
    } finally {
      c.destroy();
    }
  });
});
