/**
 * Audit: documented defaults of StreamOptions, ReaderOptions and SinkOptions, checked on
 * what reaches Redis (MONITOR on a private server) and on the settings the library resolves.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { readSettings } from '../packages/pulse-streaming/src/internal/readOptions.js';
import { sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { stays, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('audit: defaults', () => {
  let server: RedisServer;
  let redis: Redis;
  let mon: Redis;
  const seen: string[][] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port);
    // Nothing else connects while MONITOR starts: another connection's command (a ready check) seen
    // by MONITOR in the same read as MONITOR's own reply fails the monitor with "Command queue state
    // error" (ioredis turns to monitoring a tick after that reply). So the monitor is a duplicate of
    // a client already ready, not of a new one (whose own ready check raced it, in a loaded full run).
    await redis.ping();
    mon = await redis.monitor();
    mon.on('monitor', (_t: unknown, args: unknown[]) => seen.push(args.map(String)));
  });
  afterAll(async () => {
    mon?.disconnect();
    redis?.disconnect();
    await server.stop();
  });

  it('reader: blockMs 5000 and maxPolled 1000 by default (XREAD COUNT 1000 BLOCK 5000)', async () => {
    const s = new Stream(uniqueName('def'), redis);
    await s.add('e', 'x');
    const reader = await s.newReader({ startAt: 'oldest' });
    try {
      await take(reader.subscribe(), 1);
      const read = await waitFor(() => seen.find((a) => a[0]?.toUpperCase() === 'XREAD' && a.includes(s.key)), {
        what: 'an XREAD',
      });
      expect(read.slice(1, 5)).toEqual(['COUNT', '1000', 'BLOCK', '5000']);
    } finally {
      await reader.close();
      await s.destroy();
    }
  });

  it('sink: blockMs 5000 and maxPolled 1000 by default (XREADGROUP ... COUNT 1000 BLOCK 5000)', async () => {
    const s = new Stream(uniqueName('def'), redis);
    const sink = await s.newSink('g');
    try {
      sink.subscribe();
      const read = await waitFor(
        () => seen.find((a) => a[0]?.toUpperCase() === 'XREADGROUP' && a.includes('BLOCK') && a.includes(s.key)),
        { what: 'a blocking XREADGROUP' },
      );
      const i = read.indexOf('COUNT');
      expect(read.slice(i, i + 4)).toEqual(['COUNT', '1000', 'BLOCK', '5000']);
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it('reader: bufferSize 1000 by default (a subscriber that takes nothing holds 1000, reading pauses)', async () => {
    const s = new Stream(uniqueName('def'), redis, { maxLen: 0 });
    await Promise.all(Array.from({ length: 3000 }, (_, i) => s.add('e', `${i}`)));
    const reader = await s.newReader({ startAt: 'oldest' });
    try {
      const sub = reader.subscribe();
      await waitFor(() => sub.size >= 1000, { what: '1000 buffered' });
      // Give the reader the chance to read more: it must not.
      const reads = () => seen.filter((a) => a[0]?.toUpperCase() === 'XREAD' && a.includes(s.key)).length;
      // MONITOR reports a command after Redis ran it, and its line may come after the reply did (a
      // run with 10 workers counted the one read that filled the buffer as a read after it).
      await waitFor(() => reads() >= 1, { what: 'the read that filled the buffer, seen by MONITOR' });
      const n = reads();
      await stays(() => reads() === n && sub.size === 1000, 300, 'no read while the buffer is full');
      expect(sub.size).toBe(1000);
      expect(reader.counters.delivered).toBe(1000);
    } finally {
      await reader.close();
      await s.destroy();
    }
  });

  it('stream: dedupWindowMs 120000 and maxLen 1000 reach the add script by default', async () => {
    const s = new Stream(uniqueName('def'), redis);
    expect(s.maxLen).toBe(1000);
    expect(s.dedupWindowMs).toBe(120_000);
    expect(s.retention).toBe('limits');
    await s.add('e', 'x', { dedupId: 'd' });
    const pttl = Number(await redis.pttl(`{${s.key}}:dedup`));
    expect(pttl).toBeGreaterThan(100_000);
    expect(pttl).toBeLessThanOrEqual(120_000);
    await s.destroy();
  });

  it('TSDoc ack: the acks of one turn of the event loop travel as one XACK per stream', async () => {
    const s = new Stream(uniqueName('def'), redis);
    const s2 = new Stream(uniqueName('def'), redis);
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    await sink.addStream(s2, { startAt: 'oldest' });
    try {
      for (let i = 0; i < 3; i++) {
        await s.add('e', `${i}`);
        await s2.add('e', `${i}`);
      }
      const got = await take(sink.subscribe(), 6);
      const before = seen.length;
      await Promise.all(got.map((e) => e.ack()));
      const xacks = () => seen.slice(before).filter((a) => a[0]?.toUpperCase() === 'XACK');
      await waitFor(() => xacks().length >= 2, { what: 'XACKs' });
      expect(
        xacks()
          .map((a) => [a[1], a.length - 3])
          .sort(),
      ).toEqual(
        [
          [s.key, 3],
          [s2.key, 3],
        ].sort(),
      );
    } finally {
      await sink.close();
      await s.destroy();
      await s2.destroy();
    }
  });

  it('processBatch: the events a batch did not settle are acked in one call (one XACK)', async () => {
    const s = new Stream(uniqueName('def'), redis, { maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.add('e', `${i}`)));
    const ac = new AbortController();
    let before = 0;
    let batches = 0;
    const run = sink.processBatch(
      async (events) => {
        before = seen.length;
        batches++;
        expect(events).toHaveLength(50);
        ac.abort();
      },
      { signal: ac.signal, maxWaitMs: 200 },
    );
    try {
      await run;
      expect(batches).toBe(1);
      const xacks = () => seen.slice(before).filter((a) => a[0]?.toUpperCase() === 'XACK');
      await waitFor(() => sink.counters.acked === 50, { what: '50 acked' });
      await waitFor(() => xacks().length >= 1, { what: 'an XACK' });
      expect(xacks().map((a) => a.length - 3)).toEqual([50]);
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it('processBatch: maxWaitMs is short by default (a lone event is handed over at once, a later one is a batch of its own)', async () => {
    const s = new Stream(uniqueName('def'), redis, { maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100 });
    const batches: Array<{ at: number; ids: string[] }> = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        batches.push({ at: Date.now(), ids: events.map((e) => e.id) });
      },
      { signal: ac.signal },
    );
    try {
      const t0 = Date.now();
      const a = await s.add('e', 'a');
      await waitFor(() => batches.length === 1, { what: 'first batch' });
      expect(batches[0]?.ids).toEqual([a]);
      expect((batches[0]?.at ?? 0) - t0).toBeLessThan(500);
      const [c1, c2] = await Promise.all([s.add('e', 'c'), s.add('e', 'd')]);
      await waitFor(() => batches.length === 2, { what: 'second batch' });
      expect(batches[1]?.ids).toEqual([c1, c2]);
    } finally {
      ac.abort();
      await run;
      await sink.close();
      await s.destroy();
    }
  });

  it('resolved settings: ackGracePeriodMs 20000, maxDeliveries unlimited, noAck false, startAt newest', () => {
    const sink = sinkSettings({});
    expect(sink.graceMs).toBe(20_000);
    expect(sink.maxDeliveries).toBeUndefined();
    expect(sink.noAck).toBe(false);
    expect(sink.blockMs).toBe(5000);
    expect(sink.maxPolled).toBe(1000);
    expect(sink.bufferSize).toBe(1000);
    const reader = readSettings({});
    expect(reader.blockMs).toBe(5000);
    expect(reader.maxPolled).toBe(1000);
    expect(reader.bufferSize).toBe(1000);
    expect(reader.matches).toBeUndefined();
  });
});
