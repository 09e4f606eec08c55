/**
 * Reader cursor when nobody is subscribed: a read in flight when the last
 * subscription leaves (unsubscribe, `return()`, its signal aborting) must not
 * move the cursor past events that no subscriber got, so the next
 * subscription reads them (SEMANTICS.md: the cursor is the last ID delivered).
 *
 * Each test blocks the reader in XREAD (seen in CLIENT LIST of a private
 * server), makes the last subscription leave, adds events (the blocked read
 * returns them to nobody), waits until the read has returned, then subscribes
 * again.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type Event, type Reader, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, type TestClient, take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** How long "nothing more arrives" is watched for. */
const GRACE_MS = 300;

describe.each(CLIENT_KINDS)('Reader cursor without subscribers (%s)', (kind) => {
  let srv: RedisServer;
  let c: TestClient;

  beforeAll(async () => {
    srv = await RedisServer.start();
    c = await connect(kind, srv.url);
  });
  afterAll(async () => {
    await c.close();
    await srv.stop();
  });

  async function setup(): Promise<{ s: Stream; reader: Reader }> {
    const s = new Stream(uniqueName('rc'), c.redis);
    onTestFinished(() => s.destroy());
    // A long block: the read stays in flight for the whole test unless events come.
    const reader = await s.newReader({ blockMs: 30_000 });
    onTestFinished(() => reader.close());
    return { s, reader };
  }

  /** The reader's read connection line in CLIENT LIST. */
  async function readConn(s: Stream): Promise<string | undefined> {
    return String(await c.cmd('CLIENT', 'LIST'))
      .split('\n')
      .find((l) => l.includes(` name=pulse:reader:${s.name} `));
  }

  async function blocked(s: Stream): Promise<void> {
    await waitFor(async () => / flags=b /.test((await readConn(s)) ?? ''), { what: 'the reader blocked in XREAD' });
  }

  /**
   * Waits until the blocked read has returned, and until its reply has been
   * handled: a reply on the read connection was sent before the reply to any
   * command that saw the connection unblocked, and is handled in microtasks
   * as soon as it is read, so one more round trip after that is enough.
   */
  async function served(s: Stream): Promise<void> {
    await waitFor(async () => !/ flags=b /.test((await readConn(s)) ?? ' flags=b '), { what: 'the read to return' });
    await c.cmd('PING');
  }

  function ids(events: Event[]): string[] {
    return events.map((e) => e.id);
  }

  it('the last subscription leaving mid-read: the next subscription gets what that read returned', async () => {
    const { s, reader } = await setup();
    const sub = reader.subscribe();
    const first = await s.add('e', 'first');
    expect(ids(await take(sub, 1))).toEqual([first]);
    await blocked(s);
    reader.unsubscribe(sub);
    const missed = [await s.add('e', 'a'), await s.add('e', 'b')];
    await served(s);
    expect(reader.counters.delivered).toBe(1); // nobody got them: not counted either
    const next = reader.subscribe();
    const later = await s.add('e', 'c');
    expect(ids(await take(next, 3))).toEqual([...missed, later]);
    expect(await nextWithin(next, GRACE_MS)).toBe('timeout'); // once each
    expect(reader.counters).toEqual({ delivered: 4, lost: 0 });
  });

  it('leaving a for await loop mid-read: a later loop gets the events', async () => {
    const { s, reader } = await setup();
    const sub = reader.subscribe();
    const first = await s.add('e', 'first');
    for await (const ev of sub) {
      expect(ev.id).toBe(first);
      await blocked(s);
      break; // return(): unsubscribes while the next read is in flight
    }
    expect(sub.ended).toBe(true);
    const missed = await s.add('e', 'missed');
    await served(s);
    const later = reader[Symbol.asyncIterator]();
    expect(ids(await take(later, 1))).toEqual([missed]);
  });

  it('a subscription whose signal aborts mid-read: the next subscription gets what that read returned', async () => {
    const { s, reader } = await setup();
    const ac = new AbortController();
    const sub = reader.subscribe({ signal: ac.signal });
    const first = await s.add('e', 'first');
    expect(ids(await take(sub, 1))).toEqual([first]);
    await blocked(s);
    ac.abort();
    expect(sub.ended).toBe(true);
    const missed = await s.add('e', 'missed');
    await served(s);
    const next = reader.subscribe();
    expect(ids(await take(next, 1))).toEqual([missed]);
    expect(await nextWithin(next, GRACE_MS)).toBe('timeout');
  });

  it('one subscription of two leaving mid-read: the other gets the events, a newcomer does not get them again', async () => {
    const { s, reader } = await setup();
    const stays = reader.subscribe();
    const leaves = reader.subscribe();
    const first = await s.add('e', 'first');
    expect(ids(await take(stays, 1))).toEqual([first]);
    expect(ids(await take(leaves, 1))).toEqual([first]);
    await blocked(s);
    reader.unsubscribe(leaves);
    const a = await s.add('e', 'a');
    expect(ids(await take(stays, 1))).toEqual([a]);
    const newcomer = reader.subscribe();
    const b = await s.add('e', 'b');
    expect(ids(await take(newcomer, 1))).toEqual([b]); // a was handed to `stays`: the cursor is past it
    expect(ids(await take(stays, 1))).toEqual([b]);
  });

  it('close() racing a read that returns events: subscriptions end, close does not wait for the block', async () => {
    const { s, reader } = await setup();
    const sub = reader.subscribe();
    const first = await s.add('e', 'first');
    expect(ids(await take(sub, 1))).toEqual([first]);
    await blocked(s);
    // The add's reply and the read's reply come back together: close() runs
    // before the read is handled, which must hand nothing out.
    const closing = s.add('e', 'late').then(() => reader.close());
    await within(closing, 5000, 'close()');
    // Ended: what was buffered, if the read came first, is dropped with it.
    expect(await nextWithin(sub, GRACE_MS)).toEqual({ value: undefined, done: true });
  });
});
