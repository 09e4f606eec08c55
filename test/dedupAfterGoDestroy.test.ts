/**
 * Idempotent publish on a stream whose life ended behind the library's back:
 * Go Pulse's `Destroy` (it deletes `pulse:stream:<name>` and knows nothing of
 * the dedup hashes `{pulse:stream:<name>}:dedup`, `...:dedup:old`), or a TTL
 * a Go producer set while the Node `Stream` has no `ttlMs`. Checks that an add
 * with a `dedupId` of the old stream then adds its event to the new one (the
 * event is stored and a sink gets it) instead of resolving to the ID of an
 * entry that no longer exists, a silent loss (outside review I, finding 1;
 * README "Idempotent publish": "a stream created again does not answer with
 * an ID of the old one"). With real Go processes, then without Go (a `DEL`
 * and a `PEXPIRE` do what Go does to the key) so it runs everywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { runGo } from './support/goInterop.js';
import { describeGoVersions } from './support/goSuite.js';

const T = 60_000;

await describeGoVersions((g) => {
  const { bin, on } = g;
  let c: TestClient;
  beforeAll(() => {
    c = g.c;
  });

  it(
    "after Go's Destroy, an add with a dedupId of the old stream adds to the new one, not answering with a gone ID",
    async () => {
      const name = uniqueName('dedupgo');
      const before = new Stream(name, c.redis);
      const old = await before.add('order.created', 'order-42', { dedupId: 'order-42' });
      // A Go service destroys the stream (a reset during the migration).
      await runGo(bin, ['destroy', ...on(name)], undefined, 'destroyed');
      expect(Number(await c.cmd('EXISTS', before.key))).toBe(0);
      // README's way back to one shared key: delete Go's record; the next writer makes generation 1 again.
      await c.cmd('DEL', `${before.key}:lifecycle`);

      const s = new Stream(name, c.redis);
      const sink = await s.newSink('node', { startAt: 'oldest' });
      try {
        const sub = sink.subscribe();
        const id = await s.add('order.created', 'order-42 again', { dedupId: 'order-42' });
        // The add resolved with an ID: the event must be in the stream and reach the sink.
        const stored = (await c.cmd('XRANGE', s.key, id, id)) as unknown[];
        expect({ id, stored: stored.length, sameAsGone: id === old }).toEqual({ id, stored: 1, sameAsGone: false });
        const [got] = await take(sub, 1, 5000);
        expect(got?.payload.toString()).toBe('order-42 again');
        await got?.ack();
      } finally {
        await sink.close();
        await s.destroy();
        await c.cmd('DEL', `${s.key}:lifecycle`);
      }
    },
    T,
  );

  it(
    'a stream a Go producer gave a TTL: once it expired, an add with a dedupId of the old stream adds to the new one',
    async () => {
      const name = uniqueName('dedupttl');
      // A Go producer creates the stream with a 1.5 s TTL (absolute); the Node producer has no ttlMs of its own.
      await runGo(bin, ['add', ...on(name), '-ttl-ms', '1500'], [{ name: 'go', payload: Buffer.from('g') }], 'added');
      const s = new Stream(name, c.redis);
      try {
        const old = await s.add('order.created', 'order-7', { dedupId: 'order-7' });
        await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { timeout: 10_000, what: 'the stream to expire' });
        const id = await s.add('order.created', 'order-7 again', { dedupId: 'order-7' });
        const stored = (await c.cmd('XRANGE', s.key, id, id)) as unknown[];
        expect({ id, stored: stored.length, sameAsGone: id === old }).toEqual({ id, stored: 1, sameAsGone: false });
      } finally {
        await s.destroy();
        await c.cmd('DEL', `${s.key}:lifecycle`);
      }
    },
    T,
  );
});

describe.each(CLIENT_KINDS)('dedup records of a stream ended behind our back, without Go (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it('a stream deleted with DEL (as Go Destroy does) and created again by a sink: the dedupId adds to the new one', async () => {
    const s = new Stream(uniqueName('dedupdel'), c.redis);
    const old = await s.add('e', 'old', { dedupId: 'k' });
    await c.cmd('DEL', s.key);
    // A sink's MKSTREAM creates the stream again, empty: the records are of its earlier life.
    const sink = await s.newSink('node', { startAt: 'oldest' });
    try {
      const id = await s.add('e', 'new', { dedupId: 'k' });
      expect(id).not.toBe(old);
      expect(await c.cmd('XRANGE', s.key, id, id)).toHaveLength(1);
      // From now on the new record holds.
      expect(await s.add('e', 'again', { dedupId: 'k' })).toBe(id);
    } finally {
      await sink.close();
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  });

  it('a stream someone else gave a TTL, created again by adds without a dedupId once expired: the dedupId adds', async () => {
    const s = new Stream(uniqueName('dedupexp'), c.redis);
    const old = await s.add('e', 'old', { dedupId: 'k' });
    await c.cmd('PEXPIRE', s.key, 200);
    await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { timeout: 5000, what: 'the stream to expire' });
    await s.add('other', 'new life');
    try {
      const id = await s.add('e', 'new', { dedupId: 'k' });
      expect(id).not.toBe(old);
      expect(await c.cmd('XRANGE', s.key, id, id)).toHaveLength(1);
    } finally {
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  });
});
