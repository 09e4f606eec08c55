/**
 * A noAck sink's subscriptions stall like any: what they buffered went to the
 * one live sibling with no bound, past bufferSize + maxPolled (an outside
 * review). It now goes there up to the bound; the rest stays with the
 * stalled ones (acked as read, there is nowhere else).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';

const GRACE = 1000;

describe.each(CLIENT_KINDS)('noAck buffer bound (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a live subscription never buffers more than bufferSize + maxPolled', async () => {
    const { logger } = recordingLogger();
    const s = new Stream(uniqueName('share-nab'), c.redis, { logger });
    const sink = await s.newSink('g', {
      startAt: 'oldest',
      blockMs: 50,
      ackGracePeriodMs: GRACE,
      noAck: true,
      bufferSize: 5,
      maxPolled: 5,
    });
    let most = 0;
    let timer: NodeJS.Timeout | undefined;
    let active = true;
    try {
      const idle = [sink.subscribe(), sink.subscribe(), sink.subscribe()];
      const d = sink.subscribe();
      timer = setInterval(() => (most = Math.max(most, d.size)), 1);
      // d stays active: it takes one event every 300 ms.
      const taking = (async () => {
        while (active) {
          if (d.size > 0) await d.next();
          else (d as unknown as { next(): Promise<unknown> }).next().catch(() => {});
          await new Promise((r) => setTimeout(r, 300));
        }
      })();
      for (let i = 0; i < 40; i++) await s.add('e', `${i}`);
      await waitFor(() => idle.every((x) => x.size >= 5), { timeout: 5000, what: 'idle ones fill' });
      // Stalled: what they held goes to d as far as its bound lets it; the rest stays with them (acked as read, nowhere else to go).
      await waitFor(() => idle.every((x) => x.stalled), { timeout: 5 * GRACE, what: 'idle ones stalled' });
      await waitFor(() => d.size >= 5, { timeout: 5 * GRACE, what: 'd got some of theirs' });
      active = false;
      await taking;
      expect(most).toBeLessThanOrEqual(10);
    } finally {
      active = false;
      clearInterval(timer);
      await sink.close();
      await s.destroy().catch(() => {});
    }
  }, 30_000);
});
