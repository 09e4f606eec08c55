/**
 * A reader's subscriptions (each gets every event) and addStream/removeStream
 * at run time, against a real Redis with both clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, take, waitFor } from './support/clients.js';
import { byId, GRACE_MS, ids, readerSuite, Tap } from './support/readerSuite.js';

describe.each(CLIENT_KINDS)('Reader subscriptions (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { newStream, newReader, addMany } = readerSuite(
    () => c,
    () => c,
  );

  it('several subscriptions each receive every event', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const subs = [reader.subscribe(), reader.subscribe(), reader.subscribe()];
    const added = await addMany(s, 50);
    const got = [];
    for (const sub of subs) got.push(await take(sub, 50));
    for (const evs of got) expect(ids(evs)).toEqual(added);
    // As the same Event objects (README: treat them as read-only, a change is seen by all).
    expect(got[1]?.[7]).toBe(got[0]?.[7]);
    expect(got[2]?.[7]).toBe(got[0]?.[7]);
  });

  it('several readers each receive every event (fan-out)', async () => {
    const s = newStream();
    const r1 = await newReader(s);
    const r2 = await newReader(s);
    const s1 = r1.subscribe();
    const s2 = r2.subscribe();
    const added = await addMany(s, 30);
    expect(ids(await take(s1, 30))).toEqual(added);
    expect(ids(await take(s2, 30))).toEqual(added);
  });

  it('for await over a reader works, and break unsubscribes', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'oldest', bufferSize: 2 });
    const first = await addMany(s, 10);
    const got: Event[] = [];
    for await (const ev of reader) {
      got.push(ev);
      if (got.length === 5) break;
    }
    expect(ids(got)).toEqual(first.slice(0, 5));
    // Had the loop's subscription stayed, its full buffer (2) would stop reading for everyone.
    const sub = new Tap(reader.subscribe());
    const more = await addMany(s, 50);
    const last = more[more.length - 1];
    const seen: Event[] = [];
    await waitFor(
      async () => {
        const r = await sub.within(1000);
        if (r !== 'timeout' && !r.done) seen.push(r.value);
        return seen.length > 0 && seen[seen.length - 1]?.id === last;
      },
      { timeout: 10_000, what: 'the last event in the new subscription' },
    );
    expect(ids(seen).slice(-50)).toEqual(more);
  });

  it('a throw inside for await unsubscribes', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'oldest', bufferSize: 1 });
    await addMany(s, 5);
    await expect(
      (async () => {
        for await (const _ of reader) throw new Error('boom');
      })(),
    ).rejects.toThrow('boom');
    const sub = new Tap(reader.subscribe());
    const more = await addMany(s, 20, 'more');
    const seen: string[] = [];
    await waitFor(
      async () => {
        const r = await sub.within(1000);
        if (r !== 'timeout' && !r.done) seen.push(r.value.id);
        return seen[seen.length - 1] === more[more.length - 1];
      },
      { timeout: 10_000, what: 'the last event' },
    );
  });

  it('unsubscribe ends that subscription only', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const a = reader.subscribe();
    const b = reader.subscribe();
    const pending = a.next();
    reader.unsubscribe(a);
    expect(await pending).toEqual({ value: undefined, done: true });
    expect((await a.next()).done).toBe(true);
    const id = await s.add('e', 'x');
    expect(ids(await take(b, 1))).toEqual([id]);
    reader.unsubscribe(a); // twice is fine
  });

  it('an AbortSignal passed to subscribe ends the iteration', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const ac = new AbortController();
    const sub = reader.subscribe({ signal: ac.signal });
    const other = reader.subscribe();
    const id1 = await s.add('e', '1');
    expect(ids(await take(sub, 1))).toEqual([id1]);
    const pending = sub.next();
    ac.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
    const id2 = await s.add('e', '2');
    expect(ids(await take(other, 2))).toEqual([id1, id2]);
    expect((await sub.next()).done).toBe(true);

    // A signal already aborted: the iteration ends at once.
    const sub2 = reader.subscribe({ signal: AbortSignal.abort() });
    const r = await nextWithin(sub2, 5000);
    expect(r).not.toBe('timeout');
    expect(r !== 'timeout' && r.done).toBe(true);

    // for await with a signal ends the loop.
    const ac3 = new AbortController();
    const loop = (async () => {
      const seen: string[] = [];
      for await (const ev of reader.subscribe({ signal: ac3.signal })) {
        seen.push(ev.id);
        if (seen.length === 1) ac3.abort();
      }
      return seen;
    })();
    const id3 = await s.add('e', '3');
    await s.add('e', '4');
    expect(await loop).toEqual([id3]);
  });

  // ---- addStream / removeStream at run time --------------------------------------------------------

  it('addStream at run time delivers the events of both streams; adding a stream twice or the main stream is a no-op', async () => {
    const s1 = newStream();
    const s2 = newStream();
    const reader = await newReader(s1, { blockMs: 300 });
    const sub = reader.subscribe();
    const a = await s1.add('e', 'a');
    expect(ids(await take(sub, 1))).toEqual([a]);
    await Promise.all([reader.addStream(s2), reader.addStream(s2), reader.addStream(s2, { startAt: 'oldest' })]);
    await reader.addStream(s2);
    await reader.addStream(s1);
    await reader.addStream(new Stream(s2.name, c.redis)); // another instance of the same stream
    const b = await s2.add('e', 'b');
    const c1 = await s1.add('e', 'c');
    const d = await s2.add('e', 'd');
    const evs = await take(sub, 3);
    expect(ids(evs).sort(byId)).toEqual([b, c1, d]);
    const fromS2 = evs.filter((e) => e.streamName === s2.name);
    expect(ids(fromS2)).toEqual([b, d]); // in order within a stream
    expect(await nextWithin(sub, GRACE_MS)).toBe('timeout'); // no duplicates
  });

  it('addStream takes effect while a long blocking read is in progress', async () => {
    const s1 = newStream();
    const s2 = newStream();
    const reader = await newReader(s1, { blockMs: 60_000 });
    const sub = reader.subscribe();
    const a = await s1.add('e', 'a');
    expect(ids(await take(sub, 1))).toEqual([a]); // now blocked on s1 for up to a minute
    await reader.addStream(s2);
    const b = await s2.add('e', 'b');
    expect(ids(await take(sub, 1, 10_000))).toEqual([b]);
  });

  it('removeStream of the only stream stops all reading; adding it back resumes', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const sub = new Tap(reader.subscribe());
    await reader.removeStream(s);
    await s.add('e', 'unseen');
    expect(await sub.quiet()).toBe(true);
    await reader.addStream(s, { startAt: 'newest' });
    const id = await s.add('e', 'seen');
    expect(ids(await take(sub, 1))).toEqual([id]);
  });
});
