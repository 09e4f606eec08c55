/**
 * A reader's blockMs, maxPolled, bufferSize, topic and filter, against a real
 * Redis with both clients. Tests that count commands or connections use a
 * private server, so that other test files cannot disturb the numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Event, type ReaderOptions, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { byId, GRACE_MS, ids, readerSuite } from './support/readerSuite.js';
import { RedisServer } from './support/redisServer.js';

describe.each(CLIENT_KINDS)('Reader options (%s)', (kind) => {
  let c: TestClient;
  /** A private server, for counting commands and connections. */
  let priv: RedisServer;
  let pc: TestClient;

  beforeAll(async () => {
    c = await connect(kind);
    priv = await RedisServer.start();
    pc = await connect(kind, priv.url);
  });
  afterAll(async () => {
    await c.close();
    await pc.close();
    await priv.stop();
  });
  const { newStream, newReader, addMany, xreadCalls, clientList, sizeSettles } = readerSuite(
    () => c,
    () => pc,
  );

  it('blockMs bounds each blocking read, and events after many empty reads are all delivered (Go defect 8)', async () => {
    const s = newStream(undefined, pc);
    const reader = await newReader(s, { blockMs: 50 });
    const sub = reader.subscribe();
    const start = await xreadCalls();
    // Several empty block cycles: with the 5 s default this would take half a minute.
    await waitFor(async () => (await xreadCalls()) >= start + 6, { timeout: 8000, what: 'empty blocking reads' });
    const added = await addMany(s, 20);
    expect(ids(await take(sub, 20))).toEqual(added);
    expect(await nextWithin(sub, GRACE_MS)).toBe('timeout');
  });

  it('events added between reads, with empty reads in between, are never skipped (Go defect 8)', async () => {
    const s = newStream({ maxLen: 0 }, pc);
    const reader = await newReader(s, { blockMs: 50, maxPolled: 7 });
    const sub = reader.subscribe();
    const received: Event[] = [];
    let failed: unknown;
    const consumer = (async () => {
      try {
        received.push(...(await take(sub, 500, 20_000)));
      } catch (err) {
        failed = err;
      }
    })();
    const added: string[] = [];
    for (let burst = 0; burst < 25; burst++) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, i) => s.add('e', `${burst}:${i}`)));
      added.push(...(batch as string[]));
      if (burst % 3 === 0) {
        // Let the reader catch up, then go through at least one empty blocking read.
        const calls = await xreadCalls();
        await waitFor(async () => failed !== undefined || (await xreadCalls()) >= calls + 2, {
          timeout: 8000,
          what: 'an empty read',
        });
      }
    }
    await consumer;
    expect(failed).toBeUndefined();
    expect(received).toHaveLength(500);
    expect(ids(received)).toEqual([...added].sort(byId));
    expect(new Set(ids(received)).size).toBe(500);
    expect(await nextWithin(sub, GRACE_MS)).toBe('timeout');
  });

  it('a failed read (connection killed) does not skip the events added before the reader reads again (Go defect 8)', async () => {
    const s = newStream(undefined, pc);
    const reader = await newReader(s, { blockMs: 100 });
    const sub = reader.subscribe();
    const first = await s.add('e', 'first');
    expect(ids(await take(sub, 1))).toEqual([first]);
    // Kill every connection but the test's own and the one adds travel on (the reader's blocking one among them) ...
    // (an add whose connection is killed under it is rejected, its outcome unknown: not what this test is about)
    const own = String(await pc.cmd('CLIENT', 'ID'));
    const victims = (await clientList())
      .filter((l) => !l.includes(' name=pulse:publish ') && !l.startsWith(`id=${own} `))
      .map((l) => l.slice(3, l.indexOf(' ')));
    let killed = 0;
    for (const id of victims) killed += Number(await pc.cmd('CLIENT', 'KILL', 'ID', id));
    expect(killed).toBeGreaterThanOrEqual(1);
    // ... and add while the reader is reconnecting.
    const added = await addMany(s, 20);
    expect(ids(await take(sub, 20, 10_000))).toEqual(added);
    const after = await s.add('e', 'after');
    expect(ids(await take(sub, 1))).toEqual([after]);
  });

  it('maxPolled bounds the entries read in one call', async () => {
    const s = newStream(undefined, pc);
    const added = await addMany(s, 100);
    const reader = await newReader(s, { startAt: 'oldest', maxPolled: 7 });
    const start = await xreadCalls();
    const sub = reader.subscribe();
    expect(ids(await take(sub, 100))).toEqual(added);
    // 100 entries, at most 7 at a time: at least 15 reads.
    expect((await xreadCalls()) - start).toBeGreaterThanOrEqual(15);
  });

  it('bufferSize applies backpressure: reading pauses while the buffer is full, then everything arrives in order', async () => {
    const s = newStream({ maxLen: 0 });
    const added = await addMany(s, 1000);
    const bufferSize = 10;
    const maxPolled = 5;
    const reader = await newReader(s, { startAt: 'oldest', bufferSize, maxPolled });
    const sub = reader.subscribe();
    const size = await sizeSettles(sub);
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(bufferSize + maxPolled);
    const evs = await take(sub, 1000, 15_000);
    expect(ids(evs)).toEqual(added);
  });

  it('a full subscription holds back reading for the others too (per-subscription buffers)', async () => {
    const s = newStream({ maxLen: 0 });
    const reader = await newReader(s, { startAt: 'oldest', bufferSize: 5, maxPolled: 5 });
    const slow = reader.subscribe();
    const fast = reader.subscribe();
    const added = await addMany(s, 100);
    const got = await take(fast, 3);
    expect(ids(got)).toEqual(added.slice(0, 3));
    const size = await sizeSettles(slow);
    expect(size).toBeLessThanOrEqual(10);
    // Unsubscribing the slow one lets the fast one get everything.
    reader.unsubscribe(slow);
    expect(ids(await take(fast, 97))).toEqual(added.slice(3));
  });

  // ---- topic and filter -------------------------------------------------------------------------

  // These cases run at once (each on a stream and reader of its own, on the shared server; no command
  // or connection counted): most of each is its GRACE_MS window for an event that must not come, and
  // one after the other they took ~1.9 s per client. They register their cleanup on their own
  // context: readerSuite's newStream/newReader use the global onTestFinished, which binds to
  // whichever test is current, not to the caller, when tests run at once.
  describe.concurrent('topic and filter', () => {
    const events: Array<{ name: string; topic?: string }> = [
      { name: 'x1', topic: 'a' },
      { name: 'y1', topic: 'b' },
      { name: 'x2' },
      { name: 'y2', topic: 'a' },
      { name: 'x3', topic: 'ab' },
      { name: 'x4', topic: 'A' },
      { name: 'y3', topic: 'ba' },
      { name: 'x5', topic: 'a' },
      { name: 'x6', topic: 'a' },
      { name: 'xend', topic: 'a' }, // matches every case below: nothing can hide behind it
    ];
    const cases: Array<[string, ReaderOptions, (e: { name: string; topic?: string }) => boolean]> = [
      ['a string topic matches exactly', { topic: 'a' }, (e) => e.topic === 'a'],
      ['a RegExp tests the topic', { topic: /^a/ }, (e) => e.topic?.startsWith('a') === true],
      ['a global RegExp still matches every event', { topic: /a/g }, (e) => e.topic?.includes('a') === true],
      ['a sticky case-insensitive RegExp', { topic: /a/iy }, (e) => e.topic?.toLowerCase().startsWith('a') === true],
      ['a filter', { filter: (e: Event) => e.eventName.startsWith('x') }, (e) => e.name.startsWith('x')],
      [
        'topic and filter together',
        { topic: 'a', filter: (e: Event) => e.eventName.startsWith('x') },
        (e) => e.topic === 'a' && e.name.startsWith('x'),
      ],
    ];

    it.for(cases)('%s', async ([, options, expected], ctx) => {
      const s = new Stream(uniqueName('rd'), c.redis);
      ctx.onTestFinished(() => s.destroy());
      const reader = await s.newReader({ blockMs: 200, startAt: 'oldest', ...options });
      ctx.onTestFinished(() => reader.close());
      const sub = reader.subscribe();
      for (const e of events) await s.add(e.name, e.name, e.topic === undefined ? undefined : { topic: e.topic });
      const want = events.filter(expected).map((e) => e.name);
      const evs = await take(sub, want.length);
      expect(evs.map((e) => e.eventName)).toEqual(want);
      expect(await nextWithin(sub, GRACE_MS)).toBe('timeout');
    });
  });
});
