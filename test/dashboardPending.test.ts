/**
 * The dashboard's pending entries over HTTP (`api/pending`): pages oldest
 * first by an ID cursor (`after`, answered with `next`), of one consumer or
 * all; the page in a browser is in dashboardBrowser.test.ts.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedUrl, uniqueName } from './support/clients.js';
import { getJson, type ServedDashboard, serveDashboard } from './support/dashboard.js';

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

describe('api/pending', () => {
  it('pages pending entries oldest first by ID, one consumer or all', async () => {
    const key = `pulse:stream:${uniqueName('pend')}`;
    const name = encodeURIComponent(key.slice('pulse:stream:'.length));
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(String(await redis.call('XADD', key, '*', 'n', 'e', 'p', String(i))));
    await redis.call('XGROUP', 'CREATE', key, 'g', '0');
    await redis.call('XREADGROUP', 'GROUP', 'g', 'a', 'COUNT', '4', 'STREAMS', key, '>');
    await redis.call('XREADGROUP', 'GROUP', 'g', 'b', 'COUNT', '3', 'STREAMS', key, '>');
    type Pending = { total: number; entries: { id: string; consumer: string }[]; next: string | null };
    const p1 = await getJson<Pending>(dash, `api/pending?name=${name}&sink=g&count=3`);
    expect(p1.body).toMatchObject({ total: 7, next: ids[2] });
    expect(p1.body.entries.map((e) => e.id)).toEqual(ids.slice(0, 3));
    // Acked meanwhile: the cursor still ends the page it ended.
    await redis.call('XACK', key, 'g', ids[2] as string);
    const p2 = await getJson<Pending>(dash, `api/pending?name=${name}&sink=g&count=3&after=${p1.body.next}`);
    expect(p2.body.entries.map((e) => e.id)).toEqual(ids.slice(3, 6));
    const p3 = await getJson<Pending>(dash, `api/pending?name=${name}&sink=g&count=3&after=${p2.body.next}`);
    expect(p3.body).toMatchObject({ total: 6, entries: [{ id: ids[6], consumer: 'b' }], next: null });
    const ofA = await getJson<Pending>(dash, `api/pending?name=${name}&sink=g&consumer=a&count=2&after=${ids[0]}`);
    expect(ofA.body).toMatchObject({ entries: [{ id: ids[1] }, { id: ids[3] }], next: null });
    expect((await getJson(dash, `api/pending?name=${name}&sink=g&after=nope`)).status).toBe(400);
    await redis.call('DEL', key);
  });
});
