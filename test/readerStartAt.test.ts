/**
 * Every `startAt` form of a reader, against a real Redis with both clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, take } from './support/clients.js';
import { GRACE_MS, ids, readerSuite, texts } from './support/readerSuite.js';

describe.each(CLIENT_KINDS)('Reader startAt (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { newStream, newReader, addMany } = readerSuite(
    () => c,
    () => c,
  );

  it("'newest' (the default): events added after newReader resolves are delivered, earlier ones are not", async () => {
    const s = newStream();
    await s.add('before', 'b0');
    await s.add('before', 'b1');
    const reader = await newReader(s);
    // Added after newReader, before any subscription: still delivered on first subscribe.
    const a0 = await s.add('after', 'a0');
    const sub = reader.subscribe();
    const a1 = await s.add('after', 'a1');
    const evs = await take(sub, 2);
    expect(ids(evs)).toEqual([a0, a1]);
    expect(await nextWithin(sub, GRACE_MS)).toBe('timeout');
  });

  it("'newest' on a stream that does not exist yet delivers its first events", async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'newest' });
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0); // a reader creates nothing
    const sub = reader.subscribe();
    const id1 = await s.add('e', '1');
    const id2 = await s.add('e', '2');
    expect(ids(await take(sub, 2))).toEqual([id1, id2]);
  });

  it('events added while no subscription existed, long before the first subscribe, are delivered', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const added = await addMany(s, 50);
    const sub = reader.subscribe();
    expect(ids(await take(sub, 50))).toEqual(added);
  });

  it("'oldest' starts at the oldest entry", async () => {
    const s = newStream();
    const before = await addMany(s, 3);
    const reader = await newReader(s, { startAt: 'oldest' });
    const sub = reader.subscribe();
    const after = await s.add('e', 'later');
    expect(ids(await take(sub, 4))).toEqual([...before, after]);
  });

  it('a Date starts at the first entry added on or after that time (<ms>-0 included)', async () => {
    const s = newStream();
    const ms = 1_700_000_000_000;
    for (const id of [`${ms - 5}-0`, `${ms - 1}-5`, `${ms}-0`, `${ms}-1`, `${ms + 1}-0`]) {
      await c.cmd('XADD', s.key, id, 'n', 'x', 'p', id);
    }
    const reader = await newReader(s, { startAt: new Date(ms) });
    const sub = reader.subscribe();
    const evs = await take(sub, 3);
    expect(ids(evs)).toEqual([`${ms}-0`, `${ms}-1`, `${ms + 1}-0`]);
    expect(texts(evs)).toEqual([`${ms}-0`, `${ms}-1`, `${ms + 1}-0`]);
    expect(evs[0]?.createdAt.getTime()).toBe(ms);
    const live = await s.add('e', 'live');
    expect(ids(await take(sub, 1))).toEqual([live]);
  });

  it('a Date before every entry reads them all', async () => {
    const s = newStream();
    const added = await addMany(s, 5);
    const reader = await newReader(s, { startAt: new Date(Date.now() - 3_600_000) });
    expect(ids(await take(reader.subscribe(), 5))).toEqual(added);
  });

  it('{ after: id } starts at the first entry whose ID is greater', async () => {
    const s = newStream();
    const added = await addMany(s, 5);
    const reader = await newReader(s, { startAt: { after: added[1] as string } });
    const sub = reader.subscribe();
    expect(ids(await take(sub, 3))).toEqual(added.slice(2));
    expect(await nextWithin(sub, GRACE_MS)).toBe('timeout');
    // The last ID: only new events.
    const reader2 = await newReader(s, { startAt: { after: added[4] as string } });
    const sub2 = reader2.subscribe();
    const next = await s.add('e', 'new');
    expect(ids(await take(sub2, 1))).toEqual([next]);
  });

  it('{ after: id } of a deleted entry starts at the oldest remaining entry after it', async () => {
    const s = newStream();
    const added = await addMany(s, 6);
    await s.remove(added[0] as string, added[1] as string, added[2] as string);
    const reader = await newReader(s, { startAt: { after: added[0] as string } });
    expect(ids(await take(reader.subscribe(), 3))).toEqual(added.slice(3));
  });

  it('{ after: id } of a trimmed entry starts at the oldest remaining entry', async () => {
    const s = newStream({ maxLen: 10 });
    const added = await addMany(s, 400);
    const [[oldest] = []] = (await c.cmd('XRANGE', s.key, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
    expect(oldest).not.toBe(added[0]); // trimmed
    const remaining = added.slice(added.indexOf(oldest as string));
    const reader = await newReader(s, { startAt: { after: added[0] as string } });
    const evs = await take(reader.subscribe(), remaining.length);
    expect(ids(evs)).toEqual(remaining);
  });

  it("addStream takes the reader's startAt by default, or its own", async () => {
    const s = newStream();
    const s2 = newStream();
    const s3 = newStream();
    const old2 = await addMany(s2, 3, 'old2-');
    const old3 = await addMany(s3, 3, 'old3-');
    const reader = await newReader(s); // 'newest'
    await reader.addStream(s2); // newest for s2 too
    await reader.addStream(s3, { startAt: 'oldest' });
    const sub = reader.subscribe();
    const evs = await take(sub, 3);
    expect(ids(evs)).toEqual(old3);
    expect(evs.every((e) => e.streamName === s3.name)).toBe(true);
    const new2 = await s2.add('e', 'new2');
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(new2);
    expect(ev?.streamName).toBe(s2.name);
    expect(old2).not.toContain(ev?.id);
  });
});
