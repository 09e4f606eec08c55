/**
 * Read-ahead of the read loop (issue 19): with a backlog, the next read goes
 * out before the reply of the one out, so Redis serves it while this process
 * hands out the previous batch; one read at a time left a sink over 6
 * streams idle a fifth of the time. The loop runs here on a real connection,
 * with reads the test describes (a PING per read, `most` items handed out per
 * reply), so that what goes out when is seen exactly: never a read behind
 * one that may not be followed, and never past the sink's hard bound (the
 * fullest buffer + what the reads out may bring <= bufferSize + maxPolled).
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Stream, silentLogger } from '../packages/pulse-streaming/src/index.js';
import type { OwnedConnection } from '../packages/pulse-streaming/src/internal/driver.js';
import { Fanout } from '../packages/pulse-streaming/src/internal/fanout.js';
import { ReadAhead } from '../packages/pulse-streaming/src/internal/readAhead.js';
import { type LoopRead, ReadLoop } from '../packages/pulse-streaming/src/internal/readLoop.js';
import type { Subscription } from '../packages/pulse-streaming/src/subscription.js';
import { CLIENT_KINDS, connect, stays, type TestClient, uniqueName, waitFor, within } from './support/clients.js';

/** Items per read, as maxPolled. */
const MOST = 10;
/** Buffer per subscription, as bufferSize. */
const CAPACITY = 10;
/** Reads the backlog holds. */
const READS = 40;

describe.concurrent.each(CLIENT_KINDS)('read-ahead (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  async function run(
    ctx: TestContext,
    pipelined: boolean,
    consume: (sub: Subscription<number>, budget: ReadAhead) => Promise<number[]>,
  ) {
    const stream = new Stream(uniqueName('ahead'), c.redis as never);
    const conn: OwnedConnection = await stream.driver.openOwned('test:ahead', silentLogger);
    const fanout = new Fanout<number>(CAPACITY);
    const budget = new ReadAhead(CAPACITY + MOST);
    const sub = fanout.add();
    let sent = 0;
    let out = 0;
    let mostOut = 0;
    let overBound = 0;
    let nextItem = 0;
    const loop = new ReadLoop<number>({
      conn,
      control: stream.driver,
      fanout,
      logger: silentLogger,
      nextRead: (ahead) => {
        if (sent >= READS || (ahead !== undefined && (!pipelined || ahead < MOST))) return undefined;
        const read: LoopRead = {
          most: MOST,
          pipelined,
          send: async (on) => {
            // What the buffer holds, what the reads out may bring, and this one.
            if (sub.size + budget.inFlight + MOST > budget.limit) overBound++;
            sent++;
            mostOut = Math.max(mostOut, ++out);
            await on.send(['PING']);
            return MOST;
          },
        };
        return read;
      },
      onReply: (n) => {
        out--;
        for (let i = 0; i < (n as number); i++) fanout.deliver(nextItem++);
      },
      onError: async () => 'stop',
      readAhead: budget,
    });
    ctx.onTestFinished(() => loop.stop());
    loop.start();
    const got = await within(consume(sub, budget), 10_000, 'the backlog');
    return { got, mostOut, overBound, inFlight: budget.inFlight };
  }

  const all = Array.from({ length: READS * MOST }, (_, i) => i);

  async function takeAll(sub: Subscription<number>): Promise<number[]> {
    const got: number[] = [];
    for await (const n of sub) {
      got.push(n);
      if (got.length === all.length) break;
    }
    return got;
  }

  it('a backlog is read with the next read out before the reply of the one out, within the bound', async (ctx) => {
    const r = await run(ctx, true, takeAll);
    expect(r.got).toEqual(all);
    expect(r.mostOut).toBe(2);
    expect(r.overBound).toBe(0);
  });

  it('a read that may not be followed (a blocking one) is alone on its connection', async (ctx) => {
    const r = await run(ctx, false, takeAll);
    expect(r.got).toEqual(all);
    expect(r.mostOut).toBe(1);
  });

  it('a subscriber that takes nothing for a while: reading stops at the bound, then everything arrives in order', async (ctx) => {
    const r = await run(ctx, true, async (sub, budget) => {
      await waitFor(() => sub.size >= CAPACITY, { what: 'a full buffer' });
      await stays(() => sub.size + budget.inFlight <= budget.limit, 200, 'the buffer and the reads out within the bound');
      return takeAll(sub);
    });
    expect(r.got).toEqual(all);
    expect(r.overBound).toBe(0);
  });
});
