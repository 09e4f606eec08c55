/**
 * The dashboard's entries API (`api/entries`, and `api/entry`, "show all")
 * shows every header an entry carries, as the library reads it back. A
 * header named `__proto__` is a valid name; assigned as `headers[name] = v`
 * it set the object's prototype instead of a property, and JSON.stringify
 * dropped it (dashboard/payload.ts entryView).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, uniqueName } from './support/clients.js';
import { getJson, type ServedDashboard, serveDashboard } from './support/dashboard.js';

describe.each(CLIENT_KINDS)('dashboard: a header named __proto__ (%s producer)', (kind) => {
  let c: TestClient;
  let redis: Redis;
  let dash: ServedDashboard;
  beforeAll(async () => {
    c = await connect(kind);
    redis = new Redis(sharedUrl());
    dash = await serveDashboard({ redis });
  });
  afterAll(async () => {
    await dash.close();
    redis.disconnect();
    await c.close();
  });

  it('shows every header the library reads back', async () => {
    const s = new Stream(uniqueName(), c.redis);
    try {
      const headers: Record<string, string> = { tenant: 't1' };
      Object.defineProperty(headers, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
      const id = await s.add('e', 'x', { headers });
      const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
      const [ev] = await (async () => {
        const out = [];
        for await (const e of reader) {
          out.push(e);
          break;
        }
        return out;
      })();
      await reader.close();
      expect(Object.keys(ev?.headers ?? {}).sort()).toEqual(['__proto__', 'tenant']);
      const { body } = await getJson<{ entries: { headers: Record<string, string> }[] }>(
        dash,
        `api/entries?name=${encodeURIComponent(s.name)}`,
      );
      expect(Object.keys(body.entries[0]?.headers ?? {}).sort()).toEqual(['__proto__', 'tenant']);
      const one = await getJson<{ headers: Record<string, string> }>(
        dash,
        `api/entry?name=${encodeURIComponent(s.name)}&id=${id}`,
      );
      expect(Object.keys(one.body.headers).sort()).toEqual(['__proto__', 'tenant']);
    } finally {
      await s.destroy();
    }
  });
});
