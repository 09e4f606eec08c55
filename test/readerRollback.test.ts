/**
 * A reader under a Redis that rolls back (restarted with kill -9 from an RDB
 * snapshot older than its last writes), from outside review C:
 *
 * - onto a clock that is behind (a failover to a replica whose clock lags
 *   the old primary's): the reader's cursor, an entry it read, is now past
 *   the stream's last generated ID, and `XREAD` jumped over every event
 *   added after the fault (they have IDs before the cursor) until Redis'
 *   clock passed it, while the loss was counted under a wrong reason. The
 *   reader must go back to before the fault, deliver them, and say that
 *   events may be lost. A reader started at a Date ahead of Redis' clock
 *   (a cursor past the end that it did not read) must not go back;
 * - held back by a full subscription: `lost` must count what the README
 *   promises, the entries ahead of its cursor at its last check (a check
 *   that found nothing lost did not update that number) that are gone,
 *   and not those the snapshot kept (read later: delivered + lost would
 *   exceed what was added).
 *
 * The last part checks the ledger's arithmetic for these cases without a
 * server.
 */
import { describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
import { LossLedger } from '../packages/pulse-streaming/src/internal/readerLoss.js';
import { sameKey } from '../packages/pulse-streaming/src/internal/readerSameKey.js';
import { CLIENT_KINDS, connect, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** Adds `text` once the restarted server answers; its ID. */
const addAfterRestart = (s: Stream, text: string): Promise<string> =>
  waitFor(() => s.add('e', text).catch(() => undefined), { timeout: 10_000, what: `add ${text} after the restart` });

/** Calls of XINFO STREAM on the server so far (the reader's loss checks make them, from their script). */
async function xinfoCalls(c: { cmd(...a: unknown[]): Promise<unknown> }): Promise<number> {
  const info = String(await c.cmd('INFO', 'commandstats'));
  return Number(/cmdstat_xinfo\|stream:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

const texts = (evs: Event[]): string[] => evs.map((e) => e.text());

describe.concurrent.each(CLIENT_KINDS)('reader under a rollback (%s)', (kind) => {
  it('onto a clock that is behind: a cursor past the stream end goes back, the events added after the fault are delivered and the loss said', async (ctx) => {
    const srv = await RedisServer.start();
    ctx.onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('rrb'), c.redis, { maxLen: 0, logger });
    for (let i = 0; i < 3; i++) await s.add('e', `a${i}`);
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const it0 = reader.subscribe()[Symbol.asyncIterator]();
    expect(texts(await take(it0, 3))).toEqual(['a0', 'a1', 'a2']);
    await c.cmd('SAVE');
    // The old primary's clock is 20 s ahead: its IDs, lost with the fault.
    const [sec] = (await c.cmd('TIME')) as [string, string];
    const ahead = Number(sec) * 1000 + 20_000;
    for (let i = 0; i < 3; i++) await c.cmd('XADD', s.key, `${ahead}-${i}`, 'n', 'e', 'p', `f${i}`);
    expect(texts(await take(it0, 3))).toEqual(['f0', 'f1', 'f2']);
    // A reader started after them at a Date ahead of both: its cursor is past the end but was never read.
    const later = await s.newReader({ startAt: new Date(ahead + 10_000), blockMs: 200 });
    ctx.onTestFinished(() => later.close());
    const it1 = later.subscribe()[Symbol.asyncIterator]();
    await srv.restart();
    await addAfterRestart(s, 'new0');
    for (let i = 1; i < 5; i++) await s.add('e', `new${i}`);
    // Each once: the cursor went back to a2, the newest entry it read that the snapshot holds.
    // 15 s to get them: 5 s was short for both clients at once in a loaded clean-clone CI run.
    expect(texts(await take(it0, 5, 15_000))).toEqual(['new0', 'new1', 'new2', 'new3', 'new4']);
    const warned = () => lines.filter((l) => l.level === 'warn').map((l) => String(l.msg));
    await waitFor(
      () => warned().some((m) => /restarted from an older snapshot.*how many is unknown; reading again from/.test(m)),
      {
        what: 'the warning that events may be lost',
      },
    );
    // Nothing is known lost: f0..f2 were read; no count under "trimmed or deleted".
    expect(reader.counters).toEqual({ delivered: 11, lost: 0 });
    expect(warned().some((m) => /trimmed or deleted/.test(m))).toBe(false);
    // The reader started at the Date stayed there: the next event it gets is the first one after it.
    await c.cmd('XADD', s.key, `${ahead + 10_001}-0`, 'n', 'e', 'p', 'z0');
    expect(texts(await take(it1, 1, 5000))).toEqual(['z0']);
    // Nothing after its start was lost: its last check (close) counts none (readerPastEndRollback.test.ts).
    await later.close();
    expect(later.counters).toEqual({ delivered: 1, lost: 0 });
    expect(warned().some((m) => /trimmed or deleted/.test(m))).toBe(false);
  }, 30_000);

  it('held back by a full subscription: the entries ahead at its last check that the snapshot lacks are counted lost, those it kept are delivered', async (ctx) => {
    const srv = await RedisServer.start();
    ctx.onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('rrb'), c.redis, { maxLen: 0, logger });
    for (let i = 0; i < 10; i++) await s.add('e', `a${i}`);
    const reader = await s.newReader({ startAt: 'oldest', bufferSize: 15, maxPolled: 15, blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const sub = reader.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 30; i++) await s.add('e', `b${i}`);
    // Backpressure: 15 read (a0..a9, b0..b4), b5..b29 unread.
    await waitFor(() => sub.size >= 15, { what: 'buffer full' });
    await c.cmd('SAVE'); // the snapshot holds a0..a9, b0..b29
    for (let i = 0; i < 20; i++) await s.add('e', `x${i}`); // gone with the restart
    // A held-back check (about once a second) that sees x0..x19 ahead: it finds nothing lost.
    const before = await xinfoCalls(c);
    await waitFor(async () => (await xinfoCalls(c)) > before, { what: 'a held-back check after x0..x19', timeout: 5000 });
    await srv.restart();
    await addAfterRestart(s, 'new0');
    await s.add('e', 'new1');
    const got = texts(await take(it0, 42, 10_000));
    expect(got.filter((t) => t.startsWith('b'))).toHaveLength(30);
    expect(got.slice(-2)).toEqual(['new0', 'new1']);
    // x0..x19 exactly: b5..b29 were ahead too, but the snapshot kept them and they were delivered.
    await waitFor(() => reader.counters.lost === 20, { what: `20 lost (counters ${JSON.stringify(reader.counters)})` });
    await waitFor(() => lines.some((l) => l.level === 'warn' && /at least 20 \(counted\)/.test(String(l.msg))), {
      what: 'the warning with the count',
    });
    await reader.close();
    expect(reader.counters).toEqual({ delivered: 42, lost: 20 });
  }, 30_000);
});

describe('LossLedger under a rollback (no server)', () => {
  it("a check that finds nothing lost ('same') keeps what is ahead for a later rollback", () => {
    // 'oldest' of 10 entries; 15 read, then 45 ahead with nothing deleted.
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 10, maxDeleted: '0-0', lastGen: '1-10' });
    l.onRead(15, (i) => `1-${i + 1}`);
    expect(l.apply(['same', 0, 60, '0-0', '1-1', '1-60'], l.begin(0, '1-15'))).toEqual({ lost: 0 });
    // Back to 40 entries (then one more): 25 of the 45 still there after the cursor.
    expect(l.apply(['ok', 41, 26, 0, '0-0', '1-1', '2-0', 25], l.begin(1000, '1-15'))).toEqual({ lost: 20, say: 'recreated' });
  });

  it('too many kept to count: none counted (the warning says how many is unknown)', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 10, maxDeleted: '0-0', lastGen: '1-10' });
    l.onRead(5, (i) => `1-${i + 1}`);
    expect(l.apply(['ok', 10, 5, 0, '0-0', '1-1', '1-10', -1], l.begin(0, '1-5'))).toEqual({ lost: 0 });
    expect(l.apply(['ok', 8, 3, 0, '0-0', '1-1', '1-8', -1], l.begin(1000, '1-5'))).toEqual({ lost: 0, say: 'recreated' });
  });

  it("'back' moves the cursor back, and only a cursor it read is sent as one", () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 0, maxDeleted: '0-0', lastGen: '0-0' });
    l.onRead(3, (i) => `1-${i}`);
    l.onRead(3, (i) => `9-${i}`);
    const p = l.begin(0, '9-2');
    // Read cursor: flagged, with the IDs it read (the last of each batch), oldest first.
    expect(l.checkArgs(p).slice(8)).toEqual(['1', '1-2', '9-2']);
    expect(l.apply(['back', '1-2', 4, 0, '0-0', '1-0', '5-0', 0], p)).toEqual({ lost: 0, say: 'recreated', rewind: '1-2' });
    expect(l.rewinds).toBe(1);
    expect(l.checkArgs(l.begin(1000, '1-2')).slice(8)).toEqual(['1', '1-2']);
    // A cursor from a start (a Date ahead): not flagged.
    const m = new LossLedger({ base: undefined, cursor: '9-0', deleted: 0, added: 1, maxDeleted: '0-0', lastGen: '1-0' });
    expect(m.checkArgs(m.begin(0, '9-0'))).toEqual(['check', '9-0', 1000, '', '']);
  });
});

describe('sameKey (no server)', () => {
  // Then: one entry, X, which the reader had read.
  const X = '1000-0';
  const then = { added: 1, deleted: 0, maxDeleted: '0-0', lastGen: X, first: X };

  it('a key created again (an empty Redis restarted) with an entry added and deleted before a read: another key', () => {
    // a (2000-0) added and deleted, b added: the counts alone fit "X deleted, b added". Before: the
    // same key, so the reader counted nothing and said nothing (an outside trial's restart).
    expect(sameKey(then, { added: 2, deleted: 1, maxDeleted: '2000-0', lastGen: '2000-1', first: '2000-1' })).toBe(false);
    // The same with nothing left: a added and deleted.
    expect(sameKey(then, { added: 1, deleted: 1, maxDeleted: '2000-0', lastGen: '2000-0', first: '' })).toBe(false);
  });

  it('the same key, whose entries went by deletions and trims the counts account for', () => {
    // X deleted, b added.
    expect(sameKey(then, { added: 2, deleted: 1, maxDeleted: X, lastGen: '2000-1', first: '2000-1' })).toBe(true);
    // X trimmed, a and b added, a deleted.
    expect(sameKey(then, { added: 3, deleted: 2, maxDeleted: '2000-0', lastGen: '2000-1', first: '2000-1' })).toBe(true);
    // X deleted, nothing left.
    expect(sameKey(then, { added: 1, deleted: 1, maxDeleted: X, lastGen: X, first: '' })).toBe(true);
    // X still there, a added and deleted.
    expect(sameKey(then, { added: 2, deleted: 1, maxDeleted: '2000-0', lastGen: '2000-0', first: X })).toBe(true);
  });
});
