/**
 * Reads a page of another site asks for: a browser's cross-site GETs of
 * `/metrics` and `api/*` (which reach Redis) are refused, so another site's
 * page cannot make an operator's browser load a busy Redis during an
 * incident (it could not read the answers, but Redis would do the work);
 * same-origin pages and clients without `Sec-Fetch-Site` (Prometheus, curl)
 * read freely. Suggested by review C.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedUrl } from './support/clients.js';
import { type ServedDashboard, serveDashboard } from './support/dashboard.js';

describe('dashboard reads from another site', { timeout: 30_000 }, () => {
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    redis = new Redis(sharedUrl());
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
  });

  it('refuses cross-site reads that reach Redis, not same-origin or non-browser ones', async () => {
    const read = (path: string, site?: string) =>
      fetch(`${dash.url}${path}`, { headers: site === undefined ? {} : { 'Sec-Fetch-Site': site } }).then((r) => r.status);
    expect(await read('api/overview', 'cross-site')).toBe(403);
    expect(await read('metrics', 'cross-site')).toBe(403);
    expect(await read('api/live?view=overview&page=x', 'cross-site')).toBe(403);
    expect(await read('api/overview', 'same-origin')).toBe(200);
    expect(await read('metrics')).toBe(200);
    // The page itself and its files stay reachable (a link from another site opens the dashboard).
    expect(await read('', 'cross-site')).toBe(200);
  });
});
