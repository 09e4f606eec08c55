/**
 * A reader started at a Date ahead of every entry (its cursor past the
 * stream's end, never read) across a Redis restarted from an older snapshot
 * must count nothing lost: nothing after its start was ever in the stream.
 * Found from a one-off failure of readerRollback.test.ts (its first case,
 * ioredis, a clean-clone CI run at 003617f): a "trimmed or deleted" warning
 * that came from this reader. A check between the restart and the adds that
 * bring entries-added back to where it was sees the stream go back in time,
 * and the ledger took its base from the counters then, as if every entry
 * added from there on were the reader's: the next check counted the entries
 * added after the restart (IDs before the start, which `XREAD` rightly
 * skips) as trimmed or deleted. Each round waits for the check after
 * `before` adds (0 to 5 of the 5 after the restart), with different read
 * blocks; `close()` makes a last check.
 *
 * Failed before the fix: 6 to 8 of 12 rounds per client, in each of 2 runs,
 * both clients (every round with 0, 1 or 2 adds before the check; with
 * ioredis also those with 5: its check came before them); the ledger case
 * below (no server) always.
 * Fixed: a check that finds the stream gone back in time leaves the base of a
 * cursor it did not read that is past the end unknown, as at its start.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { LossLedger } from '../packages/pulse-streaming/src/internal/readerLoss.js';
import { CLIENT_KINDS, connect, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** Calls of XINFO STREAM since the server (re)started: the reader's loss checks make them, from their script. */
async function xinfoCalls(c: { cmd(...a: unknown[]): Promise<unknown> }): Promise<number> {
  const info = String(await c.cmd('INFO', 'commandstats'));
  return Number(/cmdstat_xinfo\|stream:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

const ROUNDS = 12;
const BLOCKS = [50, 200, 1000];

describe.concurrent.each(CLIENT_KINDS)('a reader started past the end, across a restart from an older snapshot (%s)', (kind) => {
  it('counts nothing lost, whenever its checks come after the restart', async (ctx) => {
    const srv = await RedisServer.start();
    ctx.onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    ctx.onTestFinished(() => c.close());
    const failed: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const before = round % 6;
      const blockMs = BLOCKS[round % BLOCKS.length] as number;
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('rpe'), c.redis, { maxLen: 0, logger });
      for (let i = 0; i < 3; i++) await s.add('e', `a${i}`);
      await c.cmd('SAVE');
      // Lost with the fault: entries of a clock 20 s ahead.
      const [sec] = (await c.cmd('TIME')) as [string, string];
      const ahead = Number(sec) * 1000 + 20_000;
      for (let i = 0; i < 3; i++) await c.cmd('XADD', s.key, `${ahead}-${i}`, 'n', 'e', 'p', `f${i}`);
      const later = await s.newReader({ startAt: new Date(ahead + 10_000), blockMs });
      const it1 = later.subscribe()[Symbol.asyncIterator]();
      await srv.restart();
      for (let i = 0; i < 5; i++) {
        if (i === before) {
          await waitFor(() => xinfoCalls(c).then((n) => n > 0), { timeout: 10_000, what: 'a check after the restart' });
        }
        await waitFor(() => s.add('e', `new${i}`).catch(() => undefined), { timeout: 10_000, what: `add new${i}` });
      }
      // It stayed at its start: the next event it gets is the first one after it.
      await c.cmd('XADD', s.key, `${ahead + 10_001}-0`, 'n', 'e', 'p', 'z0');
      expect((await take(it1, 1, 5000)).map((e) => e.text())).toEqual(['z0']);
      await later.close();
      const trimmed = lines.filter((l) => l.level === 'warn' && /trimmed or deleted/.test(String(l.msg)));
      if (later.counters.lost !== 0 || trimmed.length > 0) {
        failed.push(`round ${round} (${before} adds before the check, blockMs ${blockMs}): ${JSON.stringify(later.counters)}`);
      }
    }
    expect(failed).toEqual([]);
  }, 120_000);
});

describe('LossLedger of a start past the end, gone back in time (no server)', () => {
  it('the entries added after the fault, before the start, are not counted lost', () => {
    // A Date start 9-0 past the end (last 5-2, 6 added): base unknown.
    const l = new LossLedger({ base: undefined, cursor: '9-0', deleted: 0, added: 6, maxDeleted: '0-0', lastGen: '5-2' });
    // Back to a snapshot of 3 (last 1-2): gone back in time, nothing of the reader's was there.
    expect(l.apply(['ok', 3, 0, 0, '0-0', '1-0', '1-2', ''], l.begin(0, '9-0'))).toEqual({ lost: 0, say: 'recreated' });
    // 5 added since, with IDs before the start: not the reader's (XREAD skips them).
    expect(l.apply(['ok', 8, 0, 0, '0-0', '1-0', '2-4', ''], l.begin(1000, '9-0'))).toEqual({ lost: 0 });
    // One after the start, read: the base is taken then; nothing lost.
    l.onRead(1, () => '9-1');
    expect(l.apply(['ok', 9, 0, 0, '0-0', '1-0', '9-1', ''], l.begin(2000, '9-1'))).toEqual({ lost: 0 });
    // Trimming one not read after that is a loss: counted.
    expect(l.apply(['ok', 10, 0, 1, '9-2', '1-1', '9-2', ''], l.begin(3000, '9-1'))).toEqual({ lost: 1 });
  });
});
