/**
 * A sink reports events "gone with their stream" only when the stream was
 * really created anew (issue 13: exactly one state per event), with both
 * clients. Under load, a trim check reply can be acted on after a newer one
 * (the read loop's and the control connection's checks race, a reply waits
 * through a reconnect or a frozen event loop): its smaller entries-added
 * must not pass for a recreated key. The read path runs here on real Redis
 * replies; only the order in which two of them are acted on is forced.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Stream, silentLogger } from '../packages/pulse-streaming/src/index.js';
import type { OwnedConnection } from '../packages/pulse-streaming/src/internal/driver.js';
import { SinkReads } from '../packages/pulse-streaming/src/internal/sinkRead.js';
import { newSinkStream, type SinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('loss reports on current evidence only (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** A sink's read path on a fresh stream with `n` entries and its group at 0, recording what it reports. */
  async function readPath(ctx: TestContext, n: number) {
    const stream = new Stream(uniqueName('fl'), c.redis as never, { maxLen: 0 });
    ctx.onTestFinished(() => stream.destroy().catch(() => {}));
    for (let i = 0; i < n; i++) await stream.add('e', `${i}`);
    const group = 'sink';
    await c.cmd('XGROUP', 'CREATE', stream.key, group, '0', 'ENTRIESREAD', '0');
    const control: OwnedConnection = await stream.driver.openOwned('test:falseloss', silentLogger);
    ctx.onTestFinished(() => control.close());
    const s: SinkStream = newSinkStream(group, sinkSettings({}), stream);
    const gone: Array<string | undefined> = [];
    const lost: number[] = [];
    const reads = new SinkReads({
      name: group,
      consumerName: 'c1',
      settings: sinkSettings({ maxPolled: 100 }),
      cluster: false,
      control,
      logger: silentLogger,
      streams: new Map([[stream.key, s]]),
      loops: () => ({ groupOf: () => 0, reconnects: () => 0 }),
      deliver: () => {},
      countLost: (_name, count) => lost.push(count),
      maybeLost: () => {},
      checked: () => {},
      streamGone: async (_s, before) => {
        gone.push(before);
      },
      fail: (err) => {
        throw err;
      },
    });
    /** One checked read (MULTI: trim check, XREADGROUP), its reply not acted on yet. */
    const checkedRead = async (): Promise<unknown> => {
      // Not the blocking read a drained group gets: that one runs no check.
      reads.wake(0);
      const read = reads.nextRead(0);
      if (!read) throw new Error('no read to make');
      return read.send(control);
    };
    return { stream, s, reads, gone, lost, checkedRead };
  }

  it('a stale check reply acted on after a newer one reports nothing gone', async (ctx) => {
    const p = await readPath(ctx, 3);
    const older = await p.checkedRead();
    for (let i = 0; i < 5; i++) await p.stream.add('e', `more ${i}`);
    const newer = await p.checkedRead();
    await p.reads.onReply(0, newer);
    expect(p.s.added).toBe(8);
    // The older reply (entries-added 3) comes last: the stream was neither deleted nor expired.
    await p.reads.onReply(0, older);
    expect(p.gone).toEqual([]);
    expect(p.lost).toEqual([]);
    // What is known stays the newer state, so a later real drop is still seen.
    expect(p.s.added).toBeGreaterThanOrEqual(8);
  });

  it('a stale reply acted on once the key is gone reports nothing: the next check reports it once', async (ctx) => {
    const p = await readPath(ctx, 3);
    const older = await p.checkedRead();
    for (let i = 0; i < 5; i++) await p.stream.add('e', `more ${i}`);
    await p.reads.onReply(0, await p.checkedRead());
    await c.cmd('DEL', p.stream.key);
    // The fresh read cannot confirm a recreation (no key): the check that finds the key gone says it.
    await p.reads.onReply(0, older);
    expect(p.gone).toEqual([]);
    await p.reads.onReply(0, await p.checkedRead());
    expect(p.gone).toEqual([undefined]);
  });

  it('a stream deleted and created anew is still reported gone', async (ctx) => {
    const p = await readPath(ctx, 3);
    await p.reads.onReply(0, await p.checkedRead());
    expect(p.s.added).toBe(3);
    await c.cmd('DEL', p.stream.key);
    const first = (await p.stream.add('e', 'anew')) as string;
    await c.cmd('XGROUP', 'CREATE', p.stream.key, 'sink', '0', 'ENTRIESREAD', '0');
    await p.reads.onReply(0, await p.checkedRead());
    expect(p.gone).toEqual([first]);
  });

  it('a stale "no key" reply acted on after the key was created anew and checked reports nothing more', async (ctx) => {
    const p = await readPath(ctx, 3);
    await p.reads.onReply(0, await p.checkedRead());
    await c.cmd('DEL', p.stream.key);
    const missing = await p.checkedRead(); // its reply says 'nokey', acted on later
    const first = (await p.stream.add('e', 'anew')) as string;
    await c.cmd('XGROUP', 'CREATE', p.stream.key, 'sink', '0', 'ENTRIESREAD', '0');
    await p.reads.onReply(0, await p.checkedRead()); // finds the key created anew: reported once
    expect(p.gone).toEqual([first]);
    await p.reads.onReply(0, missing);
    // The key is there and no fall is confirmed: the new stream's events are not reported with the old one's.
    expect(p.gone).toEqual([first]);
  });

  it('a "no key" reply for a key deleted and created anew since is reported with the new first entry as cut-off', async (ctx) => {
    const p = await readPath(ctx, 3);
    await p.reads.onReply(0, await p.checkedRead());
    await c.cmd('DEL', p.stream.key);
    const missing = await p.checkedRead();
    const first = (await p.stream.add('e', 'anew')) as string;
    await p.reads.onReply(0, missing);
    expect(p.gone).toEqual([first]);
    // The new key has no group yet: the next read recreates it, and reports nothing twice.
    await p.reads.onReply(0, await p.checkedRead());
    expect(await c.cmd('XINFO', 'GROUPS', p.stream.key)).toHaveLength(1);
    expect(p.gone).toEqual([first]);
  });
});
