/**
 * The rollback check after a reconnect (a resync, sinkRollback.ts `afterReconnect`) that cannot
 * read the stream concludes nothing, and the stream stays due for it: the next check runs it again
 * and finds the rollback. With both clients, on real Redis replies.
 *
 * Failed before the fix (clean-clone CI, stop 43: clusterFailoverReads "the sink says the events it
 * read, gave back and Redis then lost", ioredis; 1 of 22 targeted runs under load): right after a
 * failover the control connection's XINFO STREAM failed (the node it asked had just died), the
 * resync returned without a word, and the trim check that brought it marked the stream trusted
 * again. No later check looked for the rollback, and entries-added could not show it either once
 * producers had added as many entries to the promoted replica as it had lost: what the sink had
 * read and given back, lost by Redis, went unsaid and uncounted.
 *
 * Here the check runs on a working connection and the resync reads the stream on a control
 * connection whose server is down (a real failed read); then on a working one. And a resync whose
 * first read works and whose second (the XRANGE of the entry this instance had read) fails, on a
 * control connection whose Redis user may not run XRANGE: what the instance had read stays for
 * the next check.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import type { OwnedConnection } from '../packages/pulse-streaming/src/internal/driver.js';
import { newSinkStream, type SinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { applyTrimCheck, trimCheckCommand } from '../packages/pulse-streaming/src/internal/sinkTrimCheck.js';
import { CLIENT_KINDS, connect, recordingLogger, sharedUrl, type TestClient, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('a rollback check that cannot read the stream (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** Redis after a rollback, and a resync due for it: see the first test. */
  async function seeded(ctx: TestContext) {
    const stream = new Stream(uniqueName('rbUnread'), c.redis as never, { maxLen: 0 });
    ctx.onTestFinished(() => stream.destroy().catch(() => {}));
    const group = 'sink';
    // What Redis has after the rollback: 1-0..3-0 read by the group, 5-0..9-0 added since by
    // producers. This instance had read 4-0, which Redis lost (never trimmed nor deleted).
    for (const id of ['1-0', '2-0', '3-0']) await c.cmd('XADD', stream.key, id, 'n', 'e', 'p', id);
    await c.cmd('XGROUP', 'CREATE', stream.key, group, '0');
    await c.cmd('XREADGROUP', 'GROUP', group, 'c1', 'STREAMS', stream.key, '>');
    for (let i = 5; i <= 9; i++) await c.cmd('XADD', stream.key, `${i}-0`, 'n', 'e', 'p', `${i}`);

    const { logger, lines } = recordingLogger();
    const good: OwnedConnection = await stream.driver.openOwned('test:rbunread', logger);
    ctx.onTestFinished(() => good.close());
    const s: SinkStream = newSinkStream(group, sinkSettings({}), stream);
    s.trusted = false;
    s.lastRead = '4-0';
    s.readBeforeReconnect = '4-0';
    const said: string[] = [];
    const host = (control: OwnedConnection) => ({
      name: group,
      consumerName: 'c1',
      control,
      logger,
      countLost: (_n: string, count: number, why: string) => said.push(`counted ${count}: ${why}`),
      maybeLost: (_n: string, why: string) => said.push(why),
      checked: () => {},
      streamGone: async () => {
        said.push('stream gone');
      },
      fail: (err: Error) => said.push(`failed: ${err.message}`),
    });
    const check = async (control: OwnedConnection) => {
      const r = ((await good.send(trimCheckCommand(group, [s]), stream.key)) as unknown[])[0] as unknown[];
      expect(String(r[0])).toBe('ok');
      await applyTrimCheck(host(control), s, r, performance.now(), s.lastRead);
    };
    /** The next check, on a working control connection, finds the rollback. */
    const findsRollback = async () => {
      await check(good);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^Redis lost entries it had acknowledged .*entry 4-0 is gone, neither trimmed nor deleted/);
      expect(s.trusted).toBe(true);
      expect(s.readBeforeReconnect).toBeUndefined();
    };
    return { stream, logger, lines, s, said, check, findsRollback };
  }

  it('concludes nothing, keeps the stream due for it, and the next check finds the rollback', async (ctx) => {
    const { stream, logger, lines, s, said, check, findsRollback } = await seeded(ctx);
    // A control connection whose server went away: its reads fail (no offline queue).
    const down = await RedisServer.start();
    ctx.onTestFinished(() => down.stop().catch(() => {}));
    const other = await connect(kind, down.url);
    ctx.onTestFinished(() => other.close());
    const downStream = new Stream(stream.name, other.redis as never, { maxLen: 0 });
    const dead: OwnedConnection = await downStream.driver.openOwned('test:rbunread-dead', logger);
    ctx.onTestFinished(() => dead.close());
    await down.kill();

    await check(dead);
    expect(said).toEqual([]);
    expect(s.trusted, 'still due for the rollback check').toBe(false);
    expect(s.readBeforeReconnect).toBe('4-0');
    // Said once while it cannot read the stream (every read is a check meanwhile).
    await check(dead);
    expect(s.trusted).toBe(false);
    expect(lines.filter((l) => /rollback check after a reconnect could not read the stream/.test(String(l.msg)))).toHaveLength(1);

    await findsRollback();
  }, 30_000);

  it('keeps what the instance had read when a read after the first fails, and the next check finds the rollback', async (ctx) => {
    const { stream, logger, s, said, check, findsRollback } = await seeded(ctx);
    // A control connection on the same Redis as a user that may read the stream's record but not
    // its entries: the resync's XINFO STREAM works, its XRANGE of 4-0 fails (NOPERM).
    const user = uniqueName('rbuser');
    await c.cmd('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-xrange');
    ctx.onTestFinished(async () => {
      await c.cmd('ACL', 'DELUSER', user);
    });
    const url = new URL(sharedUrl());
    url.username = user;
    url.password = 'pw';
    const limited = await connect(kind, url.toString());
    ctx.onTestFinished(() => limited.close());
    const limitedStream = new Stream(stream.name, limited.redis as never, { maxLen: 0 });
    const noXrange: OwnedConnection = await limitedStream.driver.openOwned('test:rbunread-noxrange', logger);
    ctx.onTestFinished(() => noXrange.close());

    await expect(check(noXrange)).rejects.toThrow(/xrange|NOPERM|permission/i);
    expect(said).toEqual([]);
    expect(s.trusted, 'still due for the rollback check').toBe(false);
    expect(s.readBeforeReconnect, 'what the instance had read, kept').toBe('4-0');

    await findsRollback();
  }, 30_000);
});
