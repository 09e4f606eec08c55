/**
 * Audit: error and recovery promises of the README, on private redis-servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulseError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  collect,
  connect,
  pulseWarnings,
  recordingLogger,
  type TestClient,
  take,
  uniqueName,
  waitFor,
} from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.each(CLIENT_KINDS)('audit: faults (%s)', (kind) => {
  let server: RedisServer;
  let c: TestClient;
  beforeAll(async () => {
    server = await RedisServer.start();
    c = await connect(kind, server.url);
  });
  afterAll(async () => {
    await c.close();
    await server.stop();
  });

  it('README: an add refused with OOM rejects with err.code OOM, and was not stored', async () => {
    const s = new Stream(uniqueName('oom'), c.redis);
    await s.add('e', 'first');
    await c.cmd('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await c.cmd('CONFIG', 'SET', 'maxmemory', '1');
    try {
      let err: unknown;
      try {
        await s.add('e', 'second');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PulseError);
      expect((err as PulseError).code).toBe('OOM');
      // Many adds of one tick (a merged script call) too.
      const many = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => s.add('e', `m${i}`)));
      for (const r of many) {
        expect(r.status).toBe('rejected');
        expect(((r as PromiseRejectedResult).reason as PulseError).code).toBe('OOM');
      }
      // With a dedupId (the add script) too.
      let dedupErr: unknown;
      try {
        await s.add('e', 'third', { dedupId: 'x' });
      } catch (e) {
        dedupErr = e;
      }
      expect((dedupErr as PulseError).code).toBe('OOM');
    } finally {
      await c.cmd('CONFIG', 'SET', 'maxmemory', '0');
    }
    expect(Number(await c.cmd('XLEN', s.key))).toBe(1);
    await s.destroy();
  });

  it('README: once a producer creates the stream again, a live sink reads the new events within a quarter grace period (at most 500 ms)', async () => {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('again'), c.redis, { logger });
    // Default grace period (20 s): the bound is then 500 ms.
    const sink = await s.newSink('g');
    try {
      const got: SinkEvent[] = [];
      const run = collect(sink.subscribe(), got, true);
      const e1 = await s.add('e', 'before');
      await waitFor(() => got.some((e) => e.id === e1), { what: 'first event' });
      await c.cmd('DEL', s.key);
      await waitFor(() => lines.some((l) => l.level === 'warn'), { timeout: 10_000, what: 'the sink noticed' });
      const t0 = Date.now();
      const e2 = await s.add('e', 'after');
      await waitFor(() => got.some((e) => e.id === e2), { timeout: 10_000, what: 'event after recreation' });
      const took = Date.now() - t0;
      // 500 ms promised; 2500 allows for a loaded machine (the defect this guards, waiting for the
      // sweep, took 9-10 s).
      expect(took).toBeLessThan(2500);
      await sink.close();
      await run;
    } finally {
      await sink.close();
    }
  });

  it('README: without a logger, sink losses are a PulseWarning with code PULSE_EVENTS_LOST', async () => {
    const s = new Stream(uniqueName('warn'), c.redis, { maxLen: 0 });
    const warnings = pulseWarnings(s.name);
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await s.add('e', `${i}`));
      await s.remove(ids[1] as string, ids[2] as string);
      const got = await take(sink.subscribe(), 2);
      await sink.ack(...got);
      await waitFor(() => sink.counters.lost === 2 && warnings.length > 0, { what: 'a warning' });
      expect(warnings[0]?.code).toBe('PULSE_EVENTS_LOST');
      expect(warnings[0]?.message).toContain('2 events lost');
    } finally {
      await sink.close();
      await s.destroy();
    }
  });
});
