/**
 * Reader: fan-out reading with its own cursor, against a real Redis with both
 * clients. Go's reader tests, every `startAt` form, options, subscriptions,
 * run-time stream changes, close, malformed entries, and the Go defects
 * 6, 7, 8 and 10 (SEMANTICS.md section 3).
 *
 * Tests that count commands or connections use a private server, so that
 * other test files running at the same time cannot disturb the numbers.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  ClosedError,
  type Event,
  InvalidArgumentError,
  PulseError,
  type Reader,
  type ReaderOptions,
  Stream,
  type StreamOptions,
  type Subscription,
} from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  connect,
  nextWithin,
  recordingLogger,
  type TestClient,
  take,
  uniqueName,
  waitFor,
} from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** How long "nothing arrives" is watched for. */
const GRACE_MS = 300;

function byId(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function ids(events: Event[]): string[] {
  return events.map((e) => e.id);
}

function texts(events: Event[]): string[] {
  return events.map((e) => e.text());
}

/** Resolves true when `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((res) => {
      t = setTimeout(() => res(false), ms);
    }),
  ]);
  clearTimeout(t);
  return r;
}

/**
 * Wraps an iterator so that watching for "nothing arrives" does not lose the
 * event that arrives later: the pending `next()` is kept for the next read.
 */
class Tap<T> implements AsyncIterator<T> {
  #pending: Promise<IteratorResult<T>> | undefined;
  constructor(private readonly it: AsyncIterator<T>) {}

  next(): Promise<IteratorResult<T>> {
    const p = this.#pending ?? this.it.next();
    this.#pending = undefined;
    return p;
  }

  /** The next result, or 'timeout' after `ms` (the pending read is kept). */
  async within(ms: number): Promise<IteratorResult<T> | 'timeout'> {
    const p = this.next();
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      p,
      new Promise<'timeout'>((res) => {
        t = setTimeout(() => res('timeout'), ms);
      }),
    ]);
    clearTimeout(t);
    if (r === 'timeout') this.#pending = p;
    return r;
  }

  /** True when nothing arrives for `ms`. */
  async quiet(ms = GRACE_MS): Promise<boolean> {
    const r = await this.within(ms);
    if (r !== 'timeout') this.#pending = Promise.resolve(r);
    return r === 'timeout';
  }
}

describe.each(CLIENT_KINDS)('Reader (%s)', (kind) => {
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

  function newStream(options?: StreamOptions, client: TestClient = c, name = uniqueName('rd')): Stream {
    const s = new Stream(name, client.redis, options);
    onTestFinished(() => s.destroy());
    return s;
  }

  async function newReader(s: Stream, options: ReaderOptions = {}): Promise<Reader> {
    const r = await s.newReader({ blockMs: 200, ...options });
    onTestFinished(() => r.close());
    return r;
  }

  async function addMany(s: Stream, n: number, prefix = 'e'): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(200, n - i) }, (_, j) => s.add(`${prefix}`, `${prefix}${i + j}`)),
      );
      out.push(...(batch as string[]));
    }
    return out;
  }

  async function xreadCalls(): Promise<number> {
    const info = String(await pc.cmd('INFO', 'commandstats'));
    const m = /cmdstat_xread:calls=(\d+)/.exec(info);
    return m ? Number(m[1]) : 0;
  }

  /** Connections to the private server, less the one adds travel on with ioredis (it lives as long as the client). */
  async function connectedClients(): Promise<number> {
    return (await clientList()).filter((l) => !l.includes(' name=pulse:publish ')).length;
  }

  async function clientList(): Promise<string[]> {
    return String(await pc.cmd('CLIENT', 'LIST'))
      .split('\n')
      .filter((l) => l.startsWith('id='));
  }

  /** Waits until nothing more arrives in a subscription's buffer (its size stays the same for a while). */
  async function sizeSettles(sub: Subscription<Event>): Promise<number> {
    let last = -1;
    let since = Date.now();
    await waitFor(
      () => {
        const size = sub.size;
        if (size !== last) {
          last = size;
          since = Date.now();
          return false;
        }
        return size > 0 && Date.now() - since >= GRACE_MS;
      },
      { timeout: 10_000, what: 'the subscription buffer to stop growing' },
    );
    return last;
  }

  // ---- Go reader tests --------------------------------------------------------------------------

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

  // ---- startAt ----------------------------------------------------------------------------------

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

  // ---- blockMs, maxPolled, bufferSize -------------------------------------------------------------

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

  describe('topic and filter', () => {
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

    it.each(cases)('%s', async (_what, options, expected) => {
      const s = newStream();
      const reader = await newReader(s, { startAt: 'oldest', ...options });
      const sub = reader.subscribe();
      for (const e of events) await s.add(e.name, e.name, e.topic === undefined ? undefined : { topic: e.topic });
      const want = events.filter(expected).map((e) => e.name);
      const evs = await take(sub, want.length);
      expect(evs.map((e) => e.eventName)).toEqual(want);
      expect(await nextWithin(sub, GRACE_MS)).toBe('timeout');
    });
  });

  // ---- subscriptions ----------------------------------------------------------------------------

  it('several subscriptions each receive every event', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const subs = [reader.subscribe(), reader.subscribe(), reader.subscribe()];
    const added = await addMany(s, 50);
    for (const sub of subs) expect(ids(await take(sub, 50))).toEqual(added);
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

  // ---- close --------------------------------------------------------------------------------------

  it('close ends subscriptions: a pending next() resolves done', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const sub = reader.subscribe();
    const sub2 = reader.subscribe();
    const pending = sub.next();
    await reader.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect((await sub2.next()).done).toBe(true);
    expect(sub.ended).toBe(true);
  });

  it('close ends a for await loop', async () => {
    const s = newStream();
    const reader = await newReader(s);
    const seen: string[] = [];
    const loop = (async () => {
      for await (const ev of reader) seen.push(ev.id);
    })();
    const id = await s.add('e', 'x');
    await waitFor(() => seen.length === 1);
    await reader.close();
    await loop;
    expect(seen).toEqual([id]);
  });

  it('close twice, and concurrently, is safe and does not hang, even during a long block (Go defect 7)', async () => {
    const s = newStream();
    const reader = await newReader(s, { blockMs: 60_000 });
    const sub = reader.subscribe();
    const id = await s.add('e', 'x');
    expect(ids(await take(sub, 1))).toEqual([id]); // now blocked for up to a minute
    const closing = Promise.all([reader.close(), reader.close(), reader.close()]);
    expect(await settlesWithin(closing, 10_000)).toBe(true);
    await closing;
    expect(await settlesWithin(reader.close(), 5000)).toBe(true);
    expect(reader.isClosed()).toBe(true);
  });

  it('close of a reader that never subscribed resolves', async () => {
    const s = newStream();
    const reader = await s.newReader({ blockMs: 60_000 });
    expect(await settlesWithin(reader.close(), 5000)).toBe(true);
    expect(reader.isClosed()).toBe(true);
  });

  it('after close: subscribe and addStream throw ClosedError, removeStream resolves (Go defect 7)', async () => {
    const s = newStream();
    const s2 = newStream();
    const reader = await newReader(s);
    await reader.addStream(s2);
    expect(reader.isClosed()).toBe(false);
    await reader.close();
    expect(reader.isClosed()).toBe(true);
    expect(() => reader.subscribe()).toThrow(ClosedError);
    let thrown: unknown;
    try {
      reader.subscribe();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PulseError);
    expect((thrown as Error).name).toBe('ClosedError');
    await expect(reader.addStream(newStream())).rejects.toBeInstanceOf(ClosedError);
    await expect(reader.addStream(s2)).rejects.toBeInstanceOf(ClosedError);
    await expect(reader.removeStream(s2)).resolves.toBeUndefined();
    await expect(reader.removeStream(s)).resolves.toBeUndefined();
    await expect(
      (async () => {
        for await (const _ of reader) break;
      })(),
    ).rejects.toBeInstanceOf(ClosedError);
  });

  it('await using closes the reader', async () => {
    const s = newStream();
    let outer: Reader | undefined;
    {
      await using reader = await s.newReader({ blockMs: 200 });
      outer = reader;
      const sub = reader.subscribe();
      const id = await s.add('e', 'x');
      expect(ids(await take(sub, 1))).toEqual([id]);
      expect(reader.isClosed()).toBe(false);
    }
    expect(outer.isClosed()).toBe(true);
  });

  it('close releases the connections the reader opened', async () => {
    const s = newStream(undefined, pc);
    // Only the test's own client is connected once earlier tests' connections are gone.
    await waitFor(async () => (await connectedClients()) === 1, { what: 'earlier connections to close' });
    const baseline = 1;
    const reader = await s.newReader({ blockMs: 100 });
    const sub = reader.subscribe();
    const id = await s.add('e', 'x');
    expect(ids(await take(sub, 1))).toEqual([id]);
    expect(await connectedClients()).toBeGreaterThan(baseline);
    await reader.close();
    await waitFor(async () => (await connectedClients()) <= baseline, { what: 'reader connections to close' });
    // The user's client is never closed by the library.
    expect(await pc.cmd('PING')).toBe('PONG');
  });

  it('reading starts with the first subscribe', async () => {
    const s = newStream(undefined, pc);
    const start = await xreadCalls();
    const reader = await newReader(s, { blockMs: 50 });
    await s.add('e', 'x');
    await new Promise((r) => setTimeout(r, GRACE_MS)); // watching for reads that must not happen
    expect(await xreadCalls()).toBe(start);
    const sub = reader.subscribe();
    expect((await take(sub, 1))[0]?.text()).toBe('x');
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
