/**
 * Outside review AK (defect 2; line numbers as of commit 41e36ff): a reader
 * whose unread entries all went (XTRIM MAXLEN 0, or stream.remove() of every
 * entry) before it read them never counted them, not even by close(): a
 * check was due only after reads (`LossLedger.due` needs `dirty`,
 * readerLoss.ts:217-219) or while held back by a full subscription
 * (`idleDue`, readerLoss.ts:227-228); an empty stream gives no read, so no
 * check ran, and `lost` stayed 0 until a producer added again (leaving one
 * entry counted 9 at once: a read, so a check).
 * Failed before the fix: {delivered: 0, lost: 0} after close() for both
 * ways of emptying, with both clients; the never-subscribed case too, and
 * the caught-up one with node-redis (with ioredis a check still due from
 * the reads before came late enough to count it); the cost test found no
 * check at all. The missing-key Date case passed: it guards the fix.
 * Fixed: a read that comes back empty for a stream carries a check of it,
 * each stream at most once per IDLE_CHECK_MS, one such check per 200 ms in
 * all (ReaderChecks.quiet), and close() checks every stream once more
 * (ReaderChecks.final). A start past the stream's end (a Date ahead of
 * Redis' clock) keeps its base unknown through such early checks
 * (readerFutureDate.test.ts, and the missing-key case below).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Event, type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** Adds `n` entries and trims the stream to nothing in one script: no read can come between. */
const ADD_THEN_EMPTY = `for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'n', 'e', 'p', 'x' .. i) end
return redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)`;

// First, and beside the cases below (describe.concurrent): it counts commands on a redis-server of
// its own, which the others do not use, and its 5.5 s of windows ran after them (~8.3 s in all).
describe.concurrent('reader, checks of a quiet stream stay cheap', () => {
  it('a caught-up reader with short blocked reads checks its quiet stream about once a second, not per read', async (ctx: TestContext) => {
    const srv = await RedisServer.start();
    ctx.onTestFinished(() => srv.stop());
    const c = await connect('ioredis', srv.url);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('rEmptyCost'), c.redis, { maxLen: 0 });
    const reader = await s.newReader({ blockMs: 50 });
    ctx.onTestFinished(() => reader.close());
    const it0 = reader.subscribe()[Symbol.asyncIterator]();
    await s.add('e', 'a');
    await take(it0, 1);
    const scripts = async (): Promise<{ scripts: number; reads: number }> => {
      const info = String(await c.cmd('INFO', 'commandstats'));
      const n = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      return { scripts: n('eval') + n('evalsha'), reads: n('xread') };
    };
    await new Promise((r) => setTimeout(r, 1500));
    const a = await scripts();
    await new Promise((r) => setTimeout(r, 4000));
    const b = await scripts();
    // About 80 empty reads in 4 s, and one check a second at most (IDLE_CHECK_MS): 4, or 5 at the edges.
    expect(b.reads - a.reads).toBeGreaterThan(20);
    expect(b.scripts - a.scripts).toBeGreaterThan(0);
    expect(b.scripts - a.scripts).toBeLessThanOrEqual(5);
    await reader.close();
    await s.destroy();
  }, 30_000);
});

describe.concurrent.each(CLIENT_KINDS)('reader, stream emptied before it read (%s)', (kind) => {
  for (const how of ['xtrim', 'remove'] as const) {
    it(`events ${how === 'xtrim' ? 'trimmed (XTRIM MAXLEN 0)' : 'all removed'} before the reader read them are counted lost`, async (ctx: TestContext) => {
      const c = await connect(kind);
      ctx.onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('rEmpty'), c.redis, { logger: logger as Logger, maxLen: 0 });
      ctx.onTestFinished(() => s.destroy());
      const reader = await s.newReader({ blockMs: 200 });
      ctx.onTestFinished(() => reader.close());
      const ids = (await Promise.all(Array.from({ length: 10 }, (_, i) => s.add('e', `p${i}`)))) as string[];
      if (how === 'xtrim') await c.cmd('XTRIM', s.key, 'MAXLEN', '0');
      else await s.remove(...ids);
      const got: Event[] = [];
      const sub = reader.subscribe();
      void (async () => {
        for await (const ev of sub) got.push(ev);
      })();
      // Counted while it reads (the first read carries a check), not only by close().
      await waitFor(() => reader.counters.lost === 10, { timeout: 7000, what: 'the 10 counted lost while reading' });
      await reader.close();
      expect(got).toHaveLength(0);
      expect(reader.counters).toEqual({ delivered: 0, lost: 10 });
      // Said, once.
      const said = lines.filter((l) => l.level === 'warn' && /trimmed or deleted/.test(String(l.msg)));
      expect(said.map((l) => (l.obj as { count?: number }).count)).toEqual([10]);
    }, 20_000);
  }

  it('a caught-up reader counts entries added and trimmed away between its reads, without close()', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('rEmptyUp'), c.redis, { maxLen: 0 });
    ctx.onTestFinished(() => s.destroy());
    const reader = await s.newReader({ blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const it0 = reader.subscribe()[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await s.add('e', `a${i}`);
    await take(it0, 3);
    // Setup, not an assertion: the check that follows those reads (within 200 ms) is done first,
    // so that what counts the 10 is a check of an empty read.
    await new Promise((r) => setTimeout(r, 700));
    await c.cmd('EVAL', ADD_THEN_EMPTY, '1', s.key, '10');
    // A quiet stream is checked at least once a second while its reads come back empty.
    await waitFor(() => reader.counters.lost === 10, { timeout: 5000, what: 'the 10 counted lost' });
    await reader.close();
    expect(reader.counters).toEqual({ delivered: 3, lost: 10 });
  }, 20_000);

  it('a reader that never subscribed: close() counts what went after its start', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('rEmptyNoSub'), c.redis, { maxLen: 0 });
    ctx.onTestFinished(() => s.destroy());
    await s.add('e', 'before');
    const reader = await s.newReader({ blockMs: 200 });
    await c.cmd('EVAL', ADD_THEN_EMPTY, '1', s.key, '10');
    await reader.close();
    // 'before' was added before its start (newest): not its own.
    expect(reader.counters).toEqual({ delivered: 0, lost: 10 });
  }, 20_000);

  it('a start at a Date ahead of Redis on a missing key: entries added before it are not counted by the checks of its empty reads', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('rEmptyFuture'), c.redis, { maxLen: 0 });
    ctx.onTestFinished(() => s.destroy());
    const startMs = Date.now() + 2000;
    const reader = await s.newReader({ startAt: new Date(startMs), blockMs: 200 });
    ctx.onTestFinished(() => reader.close());
    const got: Event[] = [];
    const sub = reader.subscribe();
    void (async () => {
      for await (const ev of sub) got.push(ev);
    })();
    // Empty reads, and their checks of the missing key, first.
    await new Promise((r) => setTimeout(r, 1300));
    for (let i = 0; i < 10; i++) await s.add('e', `before${i}`);
    await waitFor(() => Date.now() > startMs + 50, { timeout: 5000, what: 'the start time' });
    for (let i = 0; i < 3; i++) await s.add('e', `after${i}`);
    await waitFor(() => got.length === 3, { what: '3 delivered' });
    await reader.close();
    expect(got.map((e) => e.text())).toEqual(['after0', 'after1', 'after2']);
    expect(reader.counters).toEqual({ delivered: 3, lost: 0 });
  }, 20_000);
});
