/**
 * Audit: README "Retention and losses" for sinks (the reader variants are tested in readerLoss.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, pulseWarnings, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const countOf = (w: Error): number => Number(/(\d+) events? lost/.exec(w.message)?.[1] ?? 0);

describe.concurrent.each(CLIENT_KINDS)('audit: sink loss warnings (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('without a logger: at most one PulseWarning a minute per sink; what it held back is said at close()', async () => {
    const s = new Stream(uniqueName('slw'), c.redis, { maxLen: 0 });
    const warnings = pulseWarnings(s.name);
    // A short grace period: an idle sink's trim check (what finds the losses) comes every grace / 4.
    // Its own name: the server is shared, and other files' sinks named 'g' block on it too (their
    // reads, matched by name, kept this test waiting for 'no read out' until it timed out).
    const group = uniqueName('g');
    const sink = await s.newSink(group, { blockMs: 100, startAt: 'oldest', ackGracePeriodMs: 2000 });
    try {
      // Each burst is added and removed while the sink has no subscriber and no read out: reported lost.
      const idle = () =>
        waitFor(
          async () =>
            !String(await c.cmd('CLIENT', 'LIST'))
              .split('\n')
              .some((l) => l.includes(` name=pulse:sink:${group}:read `) && / flags=\S*b/.test(l)),
          { what: 'no read out' },
        );
      const drain = async (n: number): Promise<void> => {
        const sub = sink.subscribe();
        const got = (await take(sub, n)) as SinkEvent[];
        await sink.ack(...got);
        sink.unsubscribe(sub);
        await idle();
      };
      let ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await s.add('e', `a${i}`));
      await s.remove(ids[1] as string, ids[2] as string);
      await drain(3);
      await waitFor(() => sink.counters.lost === 2 && warnings.length === 1, { timeout: 12_000, what: 'first warning' });
      ids = [];
      for (let i = 0; i < 5; i++) ids.push(await s.add('e', `b${i}`));
      await s.remove(ids[0] as string, ids[2] as string, ids[3] as string);
      await drain(2);
      await waitFor(() => sink.counters.lost === 5, { timeout: 12_000, what: 'second loss counted' }).catch((e) => {
        throw new Error(`${e} counters=${JSON.stringify(sink.counters)}`);
      });
      expect(warnings).toHaveLength(1);
      await sink.close();
      await new Promise((r) => setImmediate(r));
      expect(warnings).toHaveLength(2);
      expect(warnings.map(countOf).reduce((a, b) => a + b, 0)).toBe(5);
      expect(warnings.every((w) => (w as { code?: string }).code === 'PULSE_EVENTS_LOST')).toBe(true);
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it("retention 'interest': readers are not counted (a reader behind is trimmed past, and counts it lost)", async () => {
    const s = new Stream(uniqueName('ri'), c.redis, { maxLen: 10, retention: 'interest' });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100, bufferSize: 1 });
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    try {
      const rsub = reader.subscribe();
      const ssub = sink.subscribe();
      // The sink acks everything; the reader takes one event and stops.
      const first = await s.add('e', '0');
      const [r0] = await take(rsub, 1);
      expect(r0?.id).toBe(first);
      const ids: string[] = [first];
      for (let i = 1; i < 3000; i++) ids.push((await Promise.all([s.add('e', `${i}`)]))[0] as string);
      let acked = 0;
      while (acked < 3000) {
        const got = (await take(ssub, Math.min(500, 3000 - acked), 10_000)) as SinkEvent[];
        await sink.ack(...got);
        acked += got.length;
      }
      // Trimming follows the sink only: merged adds trim to about maxLen once it acked.
      await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `x${i}`)));
      const take2 = (await take(ssub, 300, 10_000)) as SinkEvent[];
      await sink.ack(...take2);
      await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `y${i}`)));
      const len = Number(await c.cmd('XLEN', s.key));
      expect(len).toBeLessThan(1000);
      // The reader, left behind, finds what was trimmed before it read it.
      await take(rsub, 1, 5000);
      await waitFor(() => reader.counters.lost > 0, { timeout: 10_000, what: 'reader losses' });
    } finally {
      await reader.close();
      await sink.close();
      await s.destroy();
    }
  });
});
