/**
 * Audit: README "Typed events" promises not checked elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type StandardSchemaV1, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('audit: typed (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('event.data is decoded (and validated) on first access and kept', async () => {
    let validations = 0;
    const counting: StandardSchemaV1<unknown, { id: number }> = {
      '~standard': {
        version: 1,
        vendor: 'audit',
        validate: (value: unknown) => {
          validations++;
          return { value: value as { id: number } };
        },
      },
    };
    const s = new Stream(uniqueName('typed'), c.redis, { schemas: { e: counting } });
    const reader = await s.newReader({ blockMs: 100 });
    try {
      const sub = reader.subscribe();
      await s.add('e', { id: 1 });
      const [ev] = await take(sub, 1);
      const before = validations;
      const first = ev?.data;
      expect(first).toEqual({ id: 1 });
      expect(ev?.data).toBe(first);
      expect(validations).toBe(before + 1);
    } finally {
      await reader.close();
      await s.destroy();
    }
  });

  it('event names without a schema are encoded and decoded unchecked (schemas alone: JSON)', async () => {
    const s = new Stream(uniqueName('typed'), c.redis, { schemas: { checked: z.object({ id: z.number() }) } });
    const reader = await s.newReader({ blockMs: 100 });
    try {
      const sub = reader.subscribe();
      await (s as unknown as Stream<{ other: unknown }>).add('other', { anything: ['goes', 1] });
      const [ev] = await take(sub, 1);
      expect(ev?.payload.toString()).toBe('{"anything":["goes",1]}');
      expect(ev?.data).toEqual({ anything: ['goes', 1] });
    } finally {
      await reader.close();
      await s.destroy();
    }
  });

  it('process(): an event that does not decode is dead-lettered at once whatever maxDeliveries says', async () => {
    const s = new Stream(uniqueName('typed'), c.redis, { schemas: { e: z.object({ id: z.number() }) } });
    const bad = String(await c.cmd('XADD', s.key, '*', 'n', 'e', 'p', '{"id":"x"}'));
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest', maxDeliveries: 5, ackGracePeriodMs: 5000 });
    const ac = new AbortController();
    const handled: string[] = [];
    const run = sink.process((ev) => void handled.push(ev.id), { signal: ac.signal });
    try {
      await waitFor(() => sink.counters.deadLettered === 1, { what: 'dead-lettered' });
      const raw = (await c.cmd('XRANGE', `pulse:stream:${s.name}:dead`, '-', '+')) as Array<[string, unknown[]]>;
      const f = raw[0]?.[1].map(String) ?? [];
      const rec = Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]]] : [])));
      expect(rec.source_id).toBe(bad);
      expect(rec.deliveries).toBe('1');
      expect(String(rec.reason)).toMatch(/^decode:/);
      expect(handled).toEqual([]);
    } finally {
      ac.abort();
      await run;
      await sink.close();
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    }
  });
});
