/**
 * revI: dedup records outliving a stream that Go Pulse destroyed.
 *
 * Go's `Destroy` deletes `pulse:stream:<name>` but knows nothing of this
 * library's dedup hashes (`{pulse:stream:<name>}:dedup`, `...:dedup:old`).
 * Without a sliding TTL the add script trusts them ("hashes written without a
 * sliding TTL never outlive the stream", internal/dedupLua.ts), so once the
 * name is shared again the way README says (stop Go, delete the lifecycle
 * record, write again), an add with a `dedupId` used before the destroy adds
 * nothing and resolves to the ID of an entry that no longer exists: no sink
 * of the new stream ever gets the event, and nothing reports it lost. README
 * (Idempotent publish): "a stream created again does not answer with an ID
 * of the old one".
 */
import { beforeAll, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { type TestClient, take, uniqueName, waitFor } from './support/clients.js';
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
