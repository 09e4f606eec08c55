/**
 * revL: dedup records of an earlier life of a stream (README "Idempotent
 * publish": "a stream created again does not answer with an ID of the old
 * one"). `stale()` (internal/dedupLua.ts) takes a stream whose
 * max-deleted-entry-id is at or after the mark for the same life; but a new
 * life whose own entries were removed with `stream.remove()` (XDEL) has a
 * max-deleted-entry-id after the mark too, so the old records are kept and
 * a retry resolves to the ID of a gone entry: nothing added, a silent loss.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

describe.each(CLIENT_KINDS)('revL dedup across lives of a stream (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it('a stream deleted (Go Destroy / DEL / TTL), created again, one of its new entries removed: the dedupId adds, not a gone ID', async () => {
    const s = new Stream(uniqueName('revLdel'), c.redis);
    const old = await s.add('e', 'old', { dedupId: 'k' });
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
});
