/**
 * A handler may throw any value, and a failed event is nacked per the retry
 * policy whatever it threw. A value `String()` cannot convert (an object
 * without a prototype, from `Object.create(null)` or `querystring.parse`)
 * once made the log line's description throw (errorText), and the nack that
 * follows it never ran: the event waited for the grace period.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { errorText } from '../packages/pulse-streaming/src/internal/redisErrors.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';

const nullProto = (): unknown => Object.assign(Object.create(null), { code: 'E_PARSE' });

describe('errorText', () => {
  it('describes any value without throwing', () => {
    expect(errorText(new Error('boom'))).toBe('boom');
    expect(errorText('text')).toBe('text');
    expect(errorText(undefined)).toBe('undefined');
    expect(errorText(nullProto())).toContain('E_PARSE');
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    expect(errorText(revoked.proxy)).toBeTypeOf('string');
    const badMessage = new Error('x');
    Object.defineProperty(badMessage, 'message', {
      get() {
        throw new Error('no message');
      },
    });
    expect(errorText(badMessage)).toBeTypeOf('string');
  });
});

describe.concurrent.each(CLIENT_KINDS)('a handler throwing a null-prototype object (%s)', (kind) => {
  // retry: false nacks at once: redelivered well before the 10 s grace period.
  it('process(): the event is nacked per the retry policy', async () => {
    const c = await connect(kind);
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100, ackGracePeriodMs: 10_000 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 5000);
      const counts: number[] = [];
      await sink.process(
        (ev: SinkEvent) => {
          counts.push(ev.deliveryCount);
          if (ev.deliveryCount === 1) throw nullProto();
          ac.abort();
        },
        { signal: ac.signal, retry: false },
      );
      clearTimeout(timer);
      expect(counts).toEqual([1, 2]);
    } finally {
      await sink.close();
      await s.destroy();
      await c.close();
    }
  });

  it('processBatch(): the batch is nacked per the retry policy', async () => {
    const c = await connect(kind);
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100, ackGracePeriodMs: 10_000 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 5000);
      const counts: number[] = [];
      await sink.processBatch(
        (evs: SinkEvent[]) => {
          for (const ev of evs) counts.push(ev.deliveryCount);
          if (counts.length === 1) throw nullProto();
          ac.abort();
        },
        { signal: ac.signal, retry: false },
      );
      clearTimeout(timer);
      expect(counts).toEqual([1, 2]);
    } finally {
      await sink.close();
      await s.destroy();
      await c.close();
    }
  });
});
