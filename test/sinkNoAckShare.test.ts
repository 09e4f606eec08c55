/**
 * A noAck sink's subscriptions share its events. One that left (unsubscribe,
 * break) with events buffered dropped them: they were acked as read, so
 * nothing could give them back, and the sibling still there never got them
 * (with fan-out it had its own copy); nothing counted or logged it (an outside
 * review). They now go to a sibling that stays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)('noAck sink, shared subscriptions (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('events a leaving subscription buffered reach the sibling that stays (or are reported)', async () => {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('share-noack'), c.redis, { logger });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, noAck: true });
    try {
      const a = sink.subscribe();
      const b = sink.subscribe();
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await s.add('e', `${i}`)) as string);
      await waitFor(() => a.size + b.size === 10, { timeout: 5000, what: 'all buffered' });
      expect(a.size).toBeGreaterThan(0);
      sink.unsubscribe(a);
      const got: SinkEvent[] = [];
      const deadline = Date.now() + 3000;
      while (got.length < 10 && Date.now() < deadline) {
        const r = await Promise.race([b.next(), new Promise<'t'>((res) => setTimeout(() => res('t'), 500))]);
        if (r === 't' || r.done) break;
        got.push(r.value as SinkEvent);
      }
      const lostWarned = lines.some((l) => l.level === 'warn' || l.level === 'error');
      const ok = got.length === 10 || sink.counters.lost === 10 - got.length || lostWarned;
      expect(ok, `b got ${got.length} of 10; lost ${sink.counters.lost}; warned ${lostWarned}`).toBe(true);
    } finally {
      await sink.close();
      await s.destroy().catch(() => {});
    }
  }, 20_000);
});
