/**
 * Audit: README "Using it with Go services": who writes Go's lifecycle record, and who does not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const lifecycleKey = (name: string): string => `pulse:stream:${name}:lifecycle`;

describe.concurrent.each(CLIENT_KINDS)('audit: Go lifecycle record writers (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());
  const exists = async (key: string): Promise<boolean> => Number(await c.cmd('EXISTS', key)) === 1;

  it('sink.addStream of a stream its group creation made writes the record', async () => {
    const main = new Stream(uniqueName('lc'), c.redis);
    const other = new Stream(uniqueName('lc'), c.redis);
    const sink = await main.newSink('g', { blockMs: 100 });
    try {
      expect(await exists(lifecycleKey(other.name))).toBe(false);
      await sink.addStream(other);
      expect(await exists(other.key)).toBe(true);
      expect(await exists(lifecycleKey(other.name))).toBe(true);
    } finally {
      await sink.close();
      await main.destroy();
      await other.destroy();
      await c.cmd('DEL', lifecycleKey(main.name), lifecycleKey(other.name));
    }
  });

  it('replayDeadLetters into a stream that does not exist writes the record', async () => {
    const s = new Stream(uniqueName('lc'), c.redis);
    const dk = `pulse:stream:${s.name}:dead`;
    await c.cmd(
      'XADD',
      dk,
      '*',
      'n',
      'e',
      'p',
      'x',
      'source_stream',
      s.name,
      'source_sink',
      'g',
      'source_id',
      '1-1',
      'deliveries',
      '1',
      'reason',
      'r',
    );
    try {
      expect(await replayDeadLetters(s)).toHaveLength(1);
      expect(await exists(lifecycleKey(s.name))).toBe(true);
    } finally {
      await s.destroy();
      await c.cmd('DEL', dk, lifecycleKey(s.name));
    }
  });

  it('readers, raw XADDs and the dead-letter streams sinks write do not create it', async () => {
    const s = new Stream(uniqueName('lc'), c.redis);
    // A raw XADD makes the stream; a reader on it.
    await c.cmd('XADD', s.key, '*', 'n', 'poison', 'p', 'x');
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    await take(reader.subscribe(), 1);
    await reader.close();
    expect(await exists(lifecycleKey(s.name))).toBe(false);
    // A sink dead-letters it: the dead-letter stream gets no record (the sink's own stream does, by newSink).
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest', maxDeliveries: 1, ackGracePeriodMs: 200 });
    try {
      const sub = sink.subscribe();
      await take(sub, 1);
      const waiting = sub.next();
      await waitFor(() => sink.counters.deadLettered === 1, { timeout: 10_000, what: 'dead-lettered' });
      void waiting;
      expect(await exists(`pulse:stream:${s.name}:dead`)).toBe(true);
      expect(await exists(lifecycleKey(`${s.name}:dead`))).toBe(false);
    } finally {
      await sink.close();
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`, lifecycleKey(s.name));
    }
  });
});
