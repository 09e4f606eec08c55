/**
 * The live overview on a big keyspace: listing the stream names scans the
 * whole keyspace, so an open page must not list them on every refresh (2 s),
 * yet a stream created meanwhile must show: at once on a page (re)load, and
 * within the listing's age (LIMITS.namesMaxAgeMs, 30 s; shortened here) on a
 * page left open. Found by review C (revCdashboard): the names were cached
 * 2 s, as long as the refresh interval, so every snapshot scanned the keyspace.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../packages/pulse-streaming-cli/src/dashboard/limits.js';
import { waitFor } from './support/clients.js';
import { readEvents, type ServedDashboard, serveDashboard } from './support/dashboard.js';
import { RedisServer } from './support/redisServer.js';

const snapshots = (text: string): number => text.split('event: snapshot\n').length - 1;

describe('live overview on a big keyspace', { timeout: 60_000 }, () => {
  // A server of its own: the test counts its SCAN calls.
  let server: RedisServer;
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    server = await RedisServer.start({ args: ['--enable-debug-command', 'yes'] });
    redis = new Redis(server.url);
    for (let i = 0; i < 5; i++) await redis.xadd(`pulse:stream:s${i}`, '*', 'n', 'e', 'p', 'x');
    // An application's keys beside the streams.
    await redis.call('DEBUG', 'POPULATE', '20000', 'app:key');
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
    await server?.stop();
  });

  const scanCalls = async (): Promise<number> => {
    const info = String(await redis.call('INFO', 'commandstats'));
    return Number(/cmdstat_scan:calls=(\d+)/.exec(info)?.[1] ?? 0);
  };

  it('does not scan the whole keyspace on every refresh of an open page, but lists anew on a page load', async ({
    onTestFinished,
  }) => {
    await redis.call('CONFIG', 'RESETSTAT');
    expect(((await (await fetch(`${dash.url}api/overview`)).json()) as { total: number }).total).toBe(5);
    const perListing = await scanCalls();
    expect(perListing).toBeGreaterThan(5);

    // A stream created now shows on a page load (its first snapshot lists the names anew)...
    await redis.xadd('pulse:stream:s5', '*', 'n', 'e', 'p', 'x');
    await redis.call('CONFIG', 'RESETSTAT');
    const page = readEvents(`${dash.url}api/live?view=overview`);
    onTestFinished(page.close);
    // ...and the page's next refreshes (every 2 s) use that listing.
    await waitFor(() => snapshots(page.text()) >= 3, { timeout: 10_000, what: '3 snapshots' });
    expect(page.text()).toContain('"total":6');
    const listings = (await scanCalls()) / perListing;
    expect(listings, `${listings.toFixed(1)} full scans for ${snapshots(page.text())} snapshots`).toBeLessThan(1.5);
  });

  it('shows a stream created while a page is open once the listing is older than its age', async ({ onTestFinished }) => {
    const [age, every] = [LIMITS.namesMaxAgeMs, LIMITS.overviewEveryMs];
    LIMITS.namesMaxAgeMs = 300;
    LIMITS.overviewEveryMs = 100;
    onTestFinished(() => {
      LIMITS.namesMaxAgeMs = age;
      LIMITS.overviewEveryMs = every;
    });
    const page = readEvents(`${dash.url}api/live?view=overview&q=late`);
    onTestFinished(page.close);
    await waitFor(() => snapshots(page.text()) >= 1, { what: 'a first snapshot' });
    expect(page.text()).toContain('"total":0');
    await redis.xadd('pulse:stream:late', '*', 'n', 'e', 'p', 'x');
    await waitFor(() => page.text().includes('"total":1'), { what: 'the new stream on the open page' });
  });
});
