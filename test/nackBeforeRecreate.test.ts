/**
 * Outside review NR (defect 1; line numbers as of commit 003617f): a failed
 * handler's event that Redis lost in a restart without persistence went
 * uncounted when the nack's NOGROUP came before the read path found the
 * restart. processNackRollback.test.ts "process(), empty, failing during the
 * outage" failed once in a loaded full run: the nack met NOGROUP,
 * `SinkHolds.groupGone` (sinkHolds.ts:272) ran the stream's check
 * (`lostByRedis` -> `recover`), which found nothing to act on (a check that
 * answered 'nokey' before a producer's add, the key there by its XINFO:
 * sinkTrimCheck.ts:117-131 does nothing then), so b0 was not known
 * Redis-lost and was dropped; the read path's NOGROUP then recreated the
 * group and remembered what was read before the reconnect as Redis-lost
 * (sinkRecreate.ts:71 `goneWithKey`), too late: b0 was counted nowhere.
 *
 * Here the same order on real Redis, step by step: the key and its group
 * gone (Redis restarted empty), a producer's add, the nack's NOGROUP
 * accounted for with that check (a 'nokey' reply applied with the key
 * back), then the read path's recreate. And the opposite order, and an
 * event whose group alone was destroyed (still in the stream: it comes
 * again from 0, never counted), both clients.
 *
 * Failed before the fix: 2 of 2 (both clients; "nack first": lost 0, not 1).
 * Fixed: events a nack found gone with NOGROUP and not known Redis-lost are
 * kept per stream and counted once when the read path's loss covers them.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import type { OwnedConnection } from '../packages/pulse-streaming/src/internal/driver.js';
import { LossReport } from '../packages/pulse-streaming/src/internal/lossReport.js';
import { type HoldsHost, SinkHolds } from '../packages/pulse-streaming/src/internal/sinkHolds.js';
import { recreate } from '../packages/pulse-streaming/src/internal/sinkRecreate.js';
import { awaitRedisLoss, rolledBack } from '../packages/pulse-streaming/src/internal/sinkRollback.js';
import { newSinkStream, type SinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { applyTrimCheck } from '../packages/pulse-streaming/src/internal/sinkTrimCheck.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName } from './support/clients.js';

const HOW = 'nacked after their stream or group was gone';

describe.concurrent.each(CLIENT_KINDS)('a nack meets NOGROUP before the read path finds Redis restarted empty (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** A stream read by sink `g` up to b0 (a0 handled), then a reconnect noticed (what `#noteReconnect` keeps). */
  async function setup(ctx: TestContext) {
    const stream = new Stream(uniqueName('nrNack'), c.redis as never, { maxLen: 0 });
    ctx.onTestFinished(() => stream.destroy().catch(() => {}));
    await c.cmd('XGROUP', 'CREATE', stream.key, 'g', '0', 'MKSTREAM');
    const a0 = await stream.add('e', 'a0');
    const b0 = await stream.add('e', 'b0');
    const { logger, lines } = recordingLogger();
    const control: OwnedConnection = await stream.driver.openOwned('test:nrNack', logger as Logger);
    ctx.onTestFinished(() => control.close());
    const s: SinkStream = newSinkStream('g', sinkSettings({}), stream);
    // The last trusted check came after a0 was added; b0 was read by a blocking read since.
    s.added = 1;
    s.checked = a0;
    s.tailAtCheck = a0;
    s.lastRead = b0;
    s.readBeforeReconnect = b0;
    const counters = { lost: 0 };
    const counted: string[] = [];
    const losses = new LossReport(logger as Logger, 'sink g');
    ctx.onTestFinished(() => losses.close());
    const trimHost = {
      name: 'g',
      consumerName: 'c1',
      control,
      logger: logger as Logger,
      countLost: (_n: string, count: number) => {
        counters.lost += count;
      },
      maybeLost: (n: string, why: string) => logger.warn({ stream: n }, why),
      checked: () => {},
      streamGone: async () => {
        throw new Error('not expected: no fall of entries-added here');
      },
      fail: (err: Error) => {
        throw err;
      },
    };
    const holds: SinkHolds = new SinkHolds({
      name: 'g',
      consumerName: 'c1',
      control,
      driver: stream.driver,
      logger: logger as Logger,
      counters,
      losses,
      // The check this instance ran for the nack: it answered 'nokey' (sent before the producer's add),
      // applied with the key back (its XINFO came after the add).
      recover: async () => {
        await applyTrimCheck(trimHost, s, ['nokey'], performance.now(), s.lastRead);
      },
      rolledBack: (_n: string, id: string) => rolledBack(s, id),
      counted: (_n: string, ids: readonly string[]) => counted.push(...ids),
      letGo: () => {},
      awaitRedisLoss: (_n: string, ids: readonly string[], how: string, count: (ids: readonly string[], why: string) => void) =>
        awaitRedisLoss(s, ids, how, count),
    } as unknown as HoldsHost);
    return { stream, s, holds, counters, counted, lines, trimHost, a0, b0 };
  }

  /** Redis restarted without persistence (the key and its group gone), then a producer's add. */
  async function restartEmpty(stream: Stream) {
    await c.cmd('DEL', stream.key);
    await stream.add('e', 'n0');
  }

  it('nack first, then the read path recreates the group: b0 counted lost once', async (ctx) => {
    const { stream, s, holds, counters, counted, trimHost, b0 } = await setup(ctx);
    await restartEmpty(stream);
    await holds.groupGone(stream.name, [b0], HOW);
    // The read loop's NOGROUP: the group recreated at 0, what was read before the reconnect remembered.
    await recreate(trimHost, s);
    expect(counters.lost).toBe(1);
    expect(counted).toEqual([b0]);
    expect(s.goneUnsure.size).toBe(0);
    // A later NOGROUP whose loss covers it again counts it no more.
    await c.cmd('XGROUP', 'DESTROY', stream.key, 'g');
    await recreate(trimHost, s);
    expect(counters.lost).toBe(1);
  });

  it('the read path first, then the nack: b0 counted lost once', async (ctx) => {
    const { stream, s, holds, counters, counted, trimHost, b0 } = await setup(ctx);
    await restartEmpty(stream);
    await recreate(trimHost, s);
    await holds.groupGone(stream.name, [b0], HOW);
    expect(counters.lost).toBe(1);
    expect(counted).toEqual([b0]);
    expect(s.goneUnsure.size).toBe(0);
  });

  it('a group destroyed on a living key: the event still in the stream comes again, never counted', async (ctx) => {
    const { stream, s, holds, counters, trimHost, b0 } = await setup(ctx);
    await c.cmd('XGROUP', 'DESTROY', stream.key, 'g');
    await holds.groupGone(stream.name, [b0], HOW);
    await recreate(trimHost, s);
    expect(counters.lost).toBe(0);
    expect(s.goneUnsure.size).toBe(0);
    // Redelivered from the group made anew (at 0): b0 is there.
    const read = (await c.cmd('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', 10, 'STREAMS', stream.key, '>')) as unknown[];
    expect(JSON.stringify(read)).toContain(b0);
  });
});
