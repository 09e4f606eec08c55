/**
 * What an outside trial of the dashboard found an operator would hit (session 28), each failing
 * before its fix: an event nacked with no delay showed as idle for 24.8 days (Redis' idle time of a
 * nack), and a basePath with a character a URL percent-encodes (`/tableau-de-bord-équipe`) was
 * accepted and then matched no request.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName } from './support/clients.js';
import { getJson, type ServedDashboard, serveDashboard } from './support/dashboard.js';

let redis: Redis;
let dash: ServedDashboard;
let based: ServedDashboard;
beforeAll(async () => {
  redis = new Redis(sharedUrl());
  [dash, based] = await Promise.all([serveDashboard({ redis }), serveDashboard({ redis, basePath: '/tableau-de-bord-équipe' })]);
});
afterAll(async () => {
  await Promise.all([dash?.close(), based?.close()]);
  redis?.disconnect();
});

describe.concurrent('dashboard: operator edges', () => {
  it('api/pending: an event nacked with no delay is due now, idle since its nack (not 24.8 days)', async () => {
    const stream = new Stream(uniqueName('nack0'), redis);
    try {
      const id = await stream.add('e', 'x');
      const sink = await stream.newSink('billing', { startAt: 'oldest' });
      for await (const ev of sink) {
        await ev.nack({ delayMs: 0 });
        break;
      }
      await sink.close();
      type Pending = { entries: { id: string; idleMs: number; nacked: boolean; dueInMs?: number }[] };
      const { body } = await getJson<Pending>(dash, `api/pending?name=${encodeURIComponent(stream.name)}&sink=billing`);
      const [entry] = body.entries;
      expect(entry?.id).toBe(id);
      expect(entry?.nacked).toBe(true);
      expect(entry?.idleMs).toBeLessThan(60_000);
    } finally {
      await stream.destroy();
    }
  });

  it('serves the dashboard under a basePath with a character a URL percent-encodes', async () => {
    const base = `${based.url}${encodeURI('tableau-de-bord-équipe')}`;
    expect((await fetch(`${base}/`)).status).toBe(200);
    expect((await fetch(`${base}/api/config`)).status).toBe(200);
    expect((await fetch(base, { redirect: 'manual' })).status).toBe(308);
  });
});
