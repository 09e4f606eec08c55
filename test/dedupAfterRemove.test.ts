/**
 * Checks that dedup records of an earlier life of a stream never answer in a
 * later one that `stream.remove()` deleted entries of (README "Idempotent
 * publish": "a stream created again does not answer with an ID of the old
 * one"). `stale()` (internal/dedupLua.ts) takes a stream whose
 * max-deleted-entry-id is at or after the mark for the same life; a new life
 * whose own entries were removed (XDEL) has one after the mark too, so
 * before the fix the old records were kept and a retry resolved to the ID of
 * a gone entry: nothing added, a silent loss (review L). `remove()` now
 * drops them before it deletes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

/** Waits until Redis' clock is past the millisecond of entry `id`. */
async function afterMillisecondOf(c: TestClient, id: string): Promise<void> {
  const ms = Number(id.split('-')[0]);
  await waitFor(
    async () => {
      const [sec, micro] = ((await c.cmd('TIME')) as unknown[]).map(Number) as [number, number];
      return sec * 1000 + Math.floor(micro / 1000) > ms;
    },
    { interval: 1, what: 'the next millisecond' },
  );
}

describe.each(CLIENT_KINDS)('dedup across lives of a stream, after remove() (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it('a stream deleted (Go Destroy / DEL / TTL), created again, one of its new entries removed: the dedupId adds, not a gone ID', async () => {
    const s = new Stream(uniqueName('dedupRemove'), c.redis);
    const old = await s.add('e', 'old', { dedupId: 'k' });
    // A life begun in the millisecond of the last dedup add can give its entries the old IDs again,
    // and nothing then tells the lives apart (README "Idempotent publish"): a real Destroy and
    // re-creation take longer than that, and so does this test (once in a CI run it did not).
    await afterMillisecondOf(c, old);
    // The stream ends behind the library's back (Go's Destroy, an expiry): the dedup hashes stay.
    await c.cmd('DEL', s.key);
    // A new life: Go (or Node without dedupId) adds, and an operator removes a bad event.
    const bad = await s.add('other', 'bad event');
    await s.add('other', 'good event');
    await s.remove(bad);
    try {
      const id = await s.add('e', 'new', { dedupId: 'k' });
      const stored = (await c.cmd('XRANGE', s.key, id, id)) as unknown[];
      expect({ sameAsGone: id === old, stored: stored.length }).toEqual({ sameAsGone: false, stored: 1 });
    } finally {
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  });

  it('a remove() in the same life keeps the records: a retry still gets the first ID', async () => {
    const s = new Stream(uniqueName('dedupRemoveSame'), c.redis);
    try {
      const first = await s.add('e', 'one', { dedupId: 'k' });
      const other = await s.add('other', 'bad event');
      await s.remove(other);
      // Every entry up to the mark deleted too: max-deleted-entry-id then says it is this life.
      await s.remove(first);
      await s.add('other', 'later');
      expect(await s.add('e', 'one', { dedupId: 'k' })).toBe(first);
    } finally {
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  });
});
