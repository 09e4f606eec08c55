/**
 * Outside review AN (defect 3; line numbers as of commit 593ef9d): lossScripts.ts checkTrimmed (commit 6365cdd) now writes the group's position with an
 * HSET whenever the group moved since the last check. HSET is a deny-oom command and, in a check
 * that counted nothing, the script's first write: at maxmemory (noeviction, or a volatile-* policy
 * with nothing volatile left) Redis refuses it and the whole check fails with OOM. A quiet sink's
 * checks (keep-alive, close) all fail while Redis is at its limit, where they ran before (their
 * other writes, XGROUP SETID / HDEL / PEXPIRE, are allowed at OOM): close() logs "could not check
 * the last reads for trimmed events" for a check that had nothing wrong to find, and what a
 * blocking read delivered stays unverified.
 * Failed before the fix: 2 of 2 (both clients): OOM from the check script (passed at 23611ac, before the kept positions).
 * Fixed: the position write is best effort (pcall).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, readBlocked, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('trim checks at maxmemory (%s)', (kind) => {
  it("a quiet sink's close() checks its last reads at maxmemory as it did before", async (ctx: TestContext) => {
    const server = await RedisServer.start({ args: ['--maxmemory-policy', 'noeviction'] });
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('revANoom'), c.redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 60_000 });
    const got: SinkEvent[] = [];
    void collect(sink.subscribe(), got, true);
    // Quiet: the sink waits in a blocking read; the event comes through it (unverified until a check).
    await readBlocked(c);
    await s.add('e', 'x');
    await waitFor(() => got.length === 1, { timeout: 8000, what: 'x delivered' });
    await c.cmd('CONFIG', 'SET', 'maxmemory', '1');
    await within(sink.close(), 10_000, 'close');
    await c.cmd('CONFIG', 'SET', 'maxmemory', '0');
    const failed = lines.filter((l) => /could not check the last reads/.test(String(l.msg))).map((l) => JSON.stringify(l.obj));
    expect(failed, 'the close check at maxmemory').toEqual([]);
  }, 30_000);
});
