/**
 * A reader whose last subscription leaves with events buffered (a `break`, a throw or a `return` out
 * of its `for await` loop, `unsubscribe`, its signal) must not skip them: its cursor is already past
 * them (a read brings up to `maxPolled` events), so they are kept and go first to the next
 * subscription, in order, once each, before what it reads after them (SEMANTICS.md §4: "Readers
 * deliver every entry that still exists after their cursor, in order, once each"). Review B found
 * them dropped uncounted: after 1 of 10 handed out, a new loop got none of the other 9 while
 * `counters` said 10 delivered. While another subscription is there, one leaving drops only its own
 * copy; `removeStream` and `close()` drop the kept events of what they end.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type Event, type Reader, type ReaderOptions, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

/** How long "nothing more arrives" is watched for. */
const GRACE_MS = 300;

function ids(events: readonly Event[]): string[] {
  return events.map((e) => e.id);
}

describe.concurrent.each(CLIENT_KINDS)('reader resumes after its last subscription left (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  function newStream(ctx: TestContext): Stream {
    const s = new Stream(uniqueName('rres'), c.redis);
    ctx.onTestFinished(() => s.destroy());
    return s;
  }

  async function newReader(ctx: TestContext, s: Stream, options: ReaderOptions = {}): Promise<Reader> {
    const r = await s.newReader({ startAt: 'oldest', blockMs: 100, ...options });
    ctx.onTestFinished(() => r.close());
    return r;
  }

  async function addMany(s: Stream, n: number, prefix = 'e'): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await s.add('e', `${prefix}${i}`));
    return out;
  }

  for (const how of ['break', 'throw', 'return'] as const) {
    it(`a for await loop left by ${how} after 1 of 10: the next loop gets the other 9, in order, once`, async (ctx) => {
      const s = newStream(ctx);
      const added = await addMany(s, 10);
      const reader = await newReader(ctx, s);
      const first: string[] = [];
      const leave = async (): Promise<void> => {
        for await (const ev of reader) {
          first.push(ev.id);
          if (how === 'break') break;
          if (how === 'throw') throw new Error('left');
          return;
        }
      };
      await leave().catch(() => {});
      expect(first).toEqual(added.slice(0, 1));
      // Only what was handed out counts until the next subscription gets the rest.
      expect(reader.counters).toEqual({ delivered: 1, lost: 0 });
      const rest: string[] = [];
      for await (const ev of reader) {
        rest.push(ev.id);
        if (rest.length === 9) break;
      }
      expect(rest).toEqual(added.slice(1));
      expect(reader.counters).toEqual({ delivered: 10, lost: 0 });
      const later = reader.subscribe();
      const more = await s.add('e', 'more');
      expect(ids(await take(later, 1))).toEqual([more]); // once each: nothing of the 10 again
      expect(await nextWithin(later, GRACE_MS)).toBe('timeout');
    });
  }

  it('unsubscribe() and an aborted signal: the next subscription gets what the last one left, then what comes after', async (ctx) => {
    const s = newStream(ctx);
    const added = await addMany(s, 10);
    const reader = await newReader(ctx, s);
    const a = reader.subscribe();
    expect(ids(await take(a, 2))).toEqual(added.slice(0, 2));
    reader.unsubscribe(a);
    const ac = new AbortController();
    const b = reader.subscribe({ signal: ac.signal });
    expect(ids(await take(b, 3))).toEqual(added.slice(2, 5));
    ac.abort();
    const next = reader.subscribe();
    const more = await addMany(s, 3, 'more');
    expect(ids(await take(next, 8))).toEqual([...added.slice(5), ...more]);
    expect(await nextWithin(next, GRACE_MS)).toBe('timeout');
    expect(reader.counters).toEqual({ delivered: 13, lost: 0 });
  });

  it('several subscriptions: one leaving drops only its copy; when the last leaves, a newcomer gets what it had not taken', async (ctx) => {
    const s = newStream(ctx);
    const added = await addMany(s, 10);
    const reader = await newReader(ctx, s);
    const a = reader.subscribe();
    const b = reader.subscribe();
    expect(ids(await take(a, 1))).toEqual(added.slice(0, 1));
    expect(ids(await take(b, 4))).toEqual(added.slice(0, 4));
    reader.unsubscribe(a); // b still has events 2..10: nothing is kept
    const c1 = reader.subscribe();
    const x = await s.add('e', 'x');
    expect(ids(await take(c1, 1))).toEqual([x]);
    expect(ids(await take(b, 7))).toEqual([...added.slice(4), x]);
    reader.unsubscribe(b); // c1 is still there
    reader.unsubscribe(c1);
    const d = reader.subscribe();
    expect(await nextWithin(d, GRACE_MS)).toBe('timeout'); // everything was taken
    reader.unsubscribe(d);
    // The last one leaving with events not taken: a newcomer gets them.
    const e = reader.subscribe();
    const y = await addMany(s, 3, 'y');
    expect(ids(await take(e, 1))).toEqual(y.slice(0, 1));
    reader.unsubscribe(e);
    const f = reader.subscribe();
    expect(ids(await take(f, 2))).toEqual(y.slice(1));
    expect(await nextWithin(f, GRACE_MS)).toBe('timeout');
  });

  it('a read in flight as the last subscription leaves: the next one gets the kept events, then that read, in order', async (ctx) => {
    const s = newStream(ctx);
    const added = await addMany(s, 10);
    // A long block: the read stays in flight until an event comes.
    const reader = await newReader(ctx, s, { blockMs: 30_000 });
    const sub = reader.subscribe();
    expect(ids(await take(sub, 1))).toEqual(added.slice(0, 1));
    const readConn = async (): Promise<string> =>
      String(await c.cmd('CLIENT', 'LIST'))
        .split('\n')
        .find((l) => l.includes(` name=pulse:reader:${s.name} `)) ?? '';
    await waitFor(async () => / flags=b /.test(await readConn()), { what: 'the reader blocked in XREAD' });
    reader.unsubscribe(sub);
    const late = await s.add('e', 'late');
    // The read returns the event to nobody: its reply must not move the cursor.
    await waitFor(async () => !/ flags=b /.test(await readConn()), { what: 'the read to return' });
    await c.cmd('PING');
    const next = reader.subscribe();
    expect(ids(await take(next, 10))).toEqual([...added.slice(1), late]);
    expect(await nextWithin(next, GRACE_MS)).toBe('timeout');
    expect(reader.counters).toEqual({ delivered: 11, lost: 0 });
  });

  it('several streams: each keeps its order; removeStream drops the kept events of that stream; events deleted meanwhile still come, read before', async (ctx) => {
    const s1 = newStream(ctx);
    const s2 = newStream(ctx);
    const one = await addMany(s1, 5, 'one');
    const two = await addMany(s2, 5, 'two');
    const reader = await newReader(ctx, s1);
    await reader.addStream(s2);
    const sub = reader.subscribe();
    const got = await take(sub, 10);
    expect(ids(got.filter((ev) => ev.streamName === s1.name))).toEqual(one);
    expect(ids(got.filter((ev) => ev.streamName === s2.name))).toEqual(two);
    // A fresh batch of both: take one, leave with the rest buffered.
    const one2 = await addMany(s1, 4, 'one2');
    await addMany(s2, 4, 'two2');
    expect(ids(await take(sub, 1))).toEqual(one2.slice(0, 1));
    await waitFor(() => sub.size === 7, { what: 'the other 7 buffered' });
    reader.unsubscribe(sub);
    // Deleted after it was read: the reader has it, it comes (it is not lost).
    await c.cmd('XDEL', s1.key, one2[3] as string);
    await reader.removeStream(s2);
    const next = reader.subscribe();
    const rest = await take(next, 3);
    expect(rest.map((ev) => `${ev.streamName} ${ev.id}`)).toEqual(one2.slice(1).map((id) => `${s1.name} ${id}`));
    expect(await nextWithin(next, GRACE_MS)).toBe('timeout'); // nothing of the removed stream
    expect(reader.counters).toEqual({ delivered: 14, lost: 0 });
  });
});
