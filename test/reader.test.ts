/**
 * Reader: fan-out reading with its own cursor, against a real Redis with both
 * clients: Go's reader tests, entries written by other programs and invalid
 * options (Go defects 6 and 10, SEMANTICS.md section 3). The rest of the
 * contract is in readerStartAt, readerOptions, readerSubscriptions and
 * readerClose.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, recordingLogger, type TestClient, take } from './support/clients.js';
import { GRACE_MS, ids, readerSuite, Tap, texts } from './support/readerSuite.js';

describe.each(CLIENT_KINDS)('Reader (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { newStream, newReader, addMany } = readerSuite(
    () => c,
    () => c,
  );

  it('reads one event (Go TestReadOnce)', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'oldest' });
    const sub = reader.subscribe();
    const id = await s.add('event', 'payload');
    const [ev] = await take(sub, 1);
    expect(ev?.id).toBe(id);
    expect(ev?.eventName).toBe('event');
    expect(ev?.payload.equals(Buffer.from('payload'))).toBe(true);
    expect(ev?.streamName).toBe(s.name);
    expect(ev?.sinkName).toBeUndefined();
    expect(ev?.topic).toBeUndefined();
    expect(ev?.deliveryCount).toBe(1);
    expect('ack' in (ev as object)).toBe(false);
  });

  it('reads since the last event (Go TestReadSinceLastEvent)', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'oldest' });
    const sub = reader.subscribe();
    await s.add('event', 'payload');
    const [first] = await take(sub, 1);
    expect(first?.text()).toBe('payload');
    await s.add('event', 'payload2');
    const [second] = await take(sub, 1);
    expect(second?.text()).toBe('payload2');

    const reader2 = await newReader(s, { startAt: { after: first?.id as string } });
    const evs2 = await take(reader2.subscribe(), 1);
    expect(texts(evs2)).toEqual(['payload2']);

    const reader3 = await newReader(s, { startAt: { after: '0' } });
    const evs3 = await take(reader3.subscribe(), 2);
    expect(texts(evs3)).toEqual(['payload', 'payload2']);
    expect(evs3.map((e) => e.eventName)).toEqual(['event', 'event']);
  });

  it('close, then destroy removes the stream (Go TestCleanup)', async () => {
    const s = newStream();
    const reader = await newReader(s, { startAt: 'oldest' });
    const sub = reader.subscribe();
    await s.add('event', 'payload');
    expect(texts(await take(sub, 1))).toEqual(['payload']);
    expect(reader.isClosed()).toBe(false);
    await reader.close();
    expect(reader.isClosed()).toBe(true);
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(1); // closing a reader leaves the stream alone
    await s.destroy();
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
  });

  it('addStream reads another stream too, and is idempotent (Go TestAddStream)', async () => {
    const s = newStream();
    const s2 = newStream();
    const reader = await newReader(s, { startAt: 'oldest' });
    await reader.addStream(s2);
    await reader.addStream(s2);
    const sub = reader.subscribe();
    const id1 = await s.add('event', 'payload');
    const id2 = await s2.add('event', 'payload2');
    const evs = await take(sub, 2);
    const got = new Map(evs.map((e) => [e.id + e.streamName, e]));
    expect(got.get(`${id1}${s.name}`)?.text()).toBe('payload');
    expect(got.get(`${id2}${s2.name}`)?.text()).toBe('payload2');
    expect(await nextWithin(sub, GRACE_MS)).toBe('timeout'); // no duplicates
  });

  it('removeStream stops reading that stream (Go TestRemoveStream)', async () => {
    const s = newStream();
    const s2 = newStream();
    const reader = await newReader(s, { startAt: 'oldest' });
    await reader.addStream(s2);
    const sub = new Tap(reader.subscribe());
    await s.add('event', 'payload');
    await s2.add('event2', 'payload2');
    const evs = await take(sub, 2);
    expect(evs.map((e) => e.eventName).sort()).toEqual(['event', 'event2']);
    expect(texts(evs).sort()).toEqual(['payload', 'payload2']);

    await reader.removeStream(s2);
    await s2.add('event4', 'payload4');
    await s.add('event3', 'payload3');
    const [next] = await take(sub, 1);
    expect(next?.eventName).toBe('event3');
    expect(next?.text()).toBe('payload3');
    expect(await sub.quiet()).toBe(true);
    // Idempotent, also for a stream that was never read.
    await reader.removeStream(s2);
    await reader.removeStream(newStream());
    await s.add('event5', 'payload5');
    expect(texts(await take(sub, 1))).toEqual(['payload5']);
  });

  // ---- entries written by other programs (Go defect 6) -------------------------------------------

  it('entries without n or p, or with extra fields, are delivered with defaults and do not stop the rest', async () => {
    const { logger, lines } = recordingLogger();
    const s = newStream({ logger });
    const reader = await newReader(s, { startAt: 'oldest' });
    const sub = reader.subscribe();
    const raw = [
      ['x', '1'],
      ['n', 'only-name'],
      ['p', 'only-payload'],
      ['n', 'full', 'p', 'body', 'extra', 'field', 't', 'tp', 'zz', 'yy'],
      ['t', 'topic-only'],
    ];
    const rawIds: string[] = [];
    for (const fields of raw) rawIds.push(String(await c.cmd('XADD', s.key, '*', ...fields)));
    const good = await addMany(s, 20, 'good');
    const evs = await take(sub, raw.length + 20);
    expect(ids(evs)).toEqual([...rawIds, ...good]);
    expect(evs.slice(0, 5).map((e) => e.eventName)).toEqual(['', 'only-name', '', 'full', '']);
    expect(texts(evs.slice(0, 5))).toEqual(['', '', 'only-payload', 'body', '']);
    expect(evs.slice(0, 5).map((e) => e.payload.length)).toEqual([0, 0, 12, 4, 0]);
    expect(evs[3]?.topic).toBe('tp');
    expect(evs[4]?.topic).toBe('topic-only');
    expect(texts(evs.slice(5))).toEqual(Array.from({ length: 20 }, (_, i) => `good${i}`));
    // Incomplete entries are reported.
    expect(lines.filter((l) => l.level === 'warn').length).toBeGreaterThanOrEqual(1);
    // Still reading.
    const id = await s.add('e', 'after');
    expect(ids(await take(sub, 1))).toEqual([id]);
  });

  // ---- invalid options (Go defect 10) ---------------------------------------------------------------

  it('blockMs 0 is rejected with InvalidArgumentError (Go defect 10)', async () => {
    const s = newStream();
    await expect(s.newReader({ blockMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
  });
});
