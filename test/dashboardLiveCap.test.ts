/**
 * Live views are capped (LIMITS.liveMax): an outside trial opened 50 overview
 * pages (no token needed) and drove Redis to 40-50k commands/s and the server
 * to 325 MB. One more than the cap is answered 503, until one closes.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../packages/pulse-streaming-cli/src/dashboard/limits.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';
import { type ServedDashboard, serveDashboard } from './support/dashboard.js';

let redis: Redis;
let dash: ServedDashboard;
const liveMax = LIMITS.liveMax;

beforeAll(async () => {
  LIMITS.liveMax = 2;
  redis = new Redis(sharedUrl());
  dash = await serveDashboard({ redis });
});

afterAll(async () => {
  LIMITS.liveMax = liveMax;
  await dash?.close();
  redis?.disconnect();
});

describe('live views', () => {
  it('past the cap are refused with 503 until one closes', async () => {
    const views: AbortController[] = [];
    const open = async (path: string): Promise<Response> => {
      const ac = new AbortController();
      views.push(ac);
      return fetch(`${dash.url}${path}`, { signal: ac.signal });
    };
    try {
      expect((await open('api/live?view=overview')).status).toBe(200);
      expect((await open(`api/tail?name=${uniqueName('cap')}`)).status).toBe(200);
      const refused = await open('api/live?view=overview');
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: string }).error).toMatch(/2 live views are open/);
      expect((await open(`api/tail?name=${uniqueName('cap')}`)).status).toBe(503);
      // One page goes away: a new one opens.
      views[0]?.abort();
      await waitFor(
        async () => {
          const r = await open('api/live?view=overview');
          return r.status === 200;
        },
        { what: 'a view once one closed' },
      );
    } finally {
      for (const v of views) v.abort();
    }
  });
});
