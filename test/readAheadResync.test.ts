/**
 * Read-ahead right after a reconnect (review of issue 19's read-ahead): a
 * read built before the one out is applied must not resync too, or events
 * trimmed between the two go uncounted. With both clients.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Stream, silentLogger } from '../packages/pulse-streaming/src/index.js';
import type { OwnedConnection } from '../packages/pulse-streaming/src/internal/driver.js';
import { SinkReads } from '../packages/pulse-streaming/src/internal/sinkRead.js';
import { newSinkStream, type SinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

describe.each(CLIENT_KINDS)('read-ahead after a reconnect (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  async function setup(ctx: TestContext) {
    const stream = new Stream(uniqueName('ra'), c.redis as never, { maxLen: 0 });
    ctx.onTestFinished(() => stream.destroy().catch(() => {}));
    for (let i = 0; i < 40; i++) await stream.add('e', `${i}`);
    const group = 'sink';
    await c.cmd('XGROUP', 'CREATE', stream.key, group, '0', 'ENTRIESREAD', '0');
    const control: OwnedConnection = await stream.driver.openOwned('test:readahead', silentLogger);
    ctx.onTestFinished(() => control.close());
    const s: SinkStream = newSinkStream(group, sinkSettings({}), stream);
    const lost: number[] = [];
    const warned: string[] = [];
    const logger = { ...silentLogger, warn: (_o: unknown, msg: string) => warned.push(msg) };
    let reconnects = 0;
    const reads = new SinkReads({
      name: group,
      consumerName: 'c1',
      settings: sinkSettings({ maxPolled: 10 }),
      cluster: false,
      control,
      logger: logger as never,
      streams: new Map([[stream.key, s]]),
      loops: () => ({ groupOf: () => 0, reconnects: () => reconnects }),
      deliver: () => {},
      countLost: (_name, count) => lost.push(count),
      maybeLost: () => {},
      checked: () => {},
      streamGone: async () => {},
      fail: (err) => {
        throw err;
      },
    });
    // A backlog: a first full read makes the group busy (the next read may go out ahead).
    reads.wake(0);
    await reads.onReply(0, await reads.nextRead(0)?.send(control));
    return { stream, s, reads, lost, warned, control, reconnect: () => reconnects++ };
  }

  it('no read goes ahead of a resync: what is trimmed meanwhile is counted by the next read', async (ctx) => {
    const p = await setup(ctx);
    p.reconnect();
    const a = p.reads.nextRead(0);
    // The loop asks for a read ahead right after sending the first one.
    expect(p.reads.nextRead(0, 1000)).toBeUndefined();
    const ra = await a?.send(p.control);
    // Group at entry 20 of 40; a producer trims to the last 5: entries 21..35 are jumped (15).
    await c.cmd('XTRIM', p.stream.key, 'MAXLEN', '5');
    await p.reads.onReply(0, ra);
    // Trusted again: the next read may go ahead, and its check counts the trim.
    const b = p.reads.nextRead(0, 1000);
    expect(b?.pipelined).toBe(true);
    await p.reads.onReply(0, await b?.send(p.control));
    expect(p.lost.reduce((x, y) => x + y, 0)).toBe(15);
    expect(p.warned).toEqual([]);
  });

  it('one read at a time (before the change): B built after A is applied', async (ctx) => {
    const p = await setup(ctx);
    p.reconnect();
    const ra = await p.reads.nextRead(0)?.send(p.control);
    await c.cmd('XTRIM', p.stream.key, 'MAXLEN', '5');
    await p.reads.onReply(0, ra);
    const rb = await p.reads.nextRead(0)?.send(p.control);
    await p.reads.onReply(0, rb);
    expect(p.lost.reduce((x, y) => x + y, 0)).toBe(15);
  });
});
