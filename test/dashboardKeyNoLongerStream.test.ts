/**
 * A stream key replaced by a key of another type after the dashboard listed
 * the names (cached up to LIMITS.namesMaxAgeMs; `/metrics` lists anew, but a
 * replacement can land between its SCAN and its reads). The overview, the
 * live page and `/metrics` read every listed stream: one `WRONGTYPE` failed
 * them all ("failed: WRONGTYPE ..." for the whole page or scrape), where a
 * stream deleted meanwhile is just left out. Found by dashboardMount failing
 * in a full run, when another file's test replaced a stream key with a string.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServedDashboard, serveDashboard } from './support/dashboard.js';
import { RedisServer } from './support/redisServer.js';

describe('a listed stream key that is no longer a stream', () => {
  // A server of its own: the overview lists every stream of the keyspace.
  let server: RedisServer;
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
    await server?.stop();
  });

  it('is left out of the overview (whose reads the live page and /metrics share), and its stream page is a 404', async () => {
    await redis.xadd('pulse:stream:kept', '*', 'n', 'e', 'p', 'x');
    await redis.xadd('pulse:stream:replaced', '*', 'n', 'e', 'p', 'x');
    const first = (await (await fetch(`${dash.url}api/overview`)).json()) as { streams: { name: string }[] };
    expect(first.streams.map((s) => s.name)).toEqual(['kept', 'replaced']);

    // Replaced while the listing is cached (30 s): the next overview reads the listed names.
    await redis.multi().del('pulse:stream:replaced').set('pulse:stream:replaced', 'not a stream').exec();
    const res = await fetch(`${dash.url}api/overview`);
    const body = (await res.json()) as { streams?: { name: string }[]; error?: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.streams?.map((s) => s.name)).toEqual(['kept']);

    const page = await fetch(`${dash.url}api/stream?name=replaced`);
    expect(page.status).toBe(404);
    expect(((await page.json()) as { error: string }).error).toContain('no stream "replaced"');
  });
});
