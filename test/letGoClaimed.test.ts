/**
 * Outside review Y (defect 1; line numbers as of commit 541462f).
 * Events this instance CLAIMED (a crashed instance's, taken over after the
 * grace period) and then nacked are recorded in `letGo`, but a rollback that loses them is
 * said nowhere: not counted, no maybe-lost line, not even the rollback's own warning.
 *
 * Mechanism: everything that finds a rollback, and the range of let-go IDs it says, is keyed
 * on this instance's own XREADGROUP reads, which claims (sinkClaims.ts:180) never move:
 * - afterReconnect (packages/pulse-streaming/src/internal/sinkRollback.ts:49-59) looks for
 *   `readBeforeReconnect` (= `lastRead`, set only at sinkRead.ts:249): here a0, which the
 *   snapshot kept, so no rollback;
 * - then `fell` (:70) needs entries-added below the last trusted check's `s.added`: no check ran
 *   since a0 (the crashed instance read b*, this one only claimed them), so `s.added` is 1 and
 *   now 2 (a0, n0): no rollback (seen with a debug print: hi a0, added 1, letGo [b0,b1,b2]);
 * - and when a rollback is found, `takeLetGo` (:126) only takes IDs in (snapshotEnd, upTo], upTo
 *   being `readBeforeReconnect` or `s.lastRead`: claimed IDs above this instance's reads are
 *   outside it (lastRead undefined for a new instance on a quiet stream: nothing taken), and on
 *   the `fell` path `s.lastRead` was already moved by the read sent in the same transaction as
 *   the check (sinkRead.ts:249 before applyTrimCheck at :276), so the range is (n0, n0].
 *
 * What the user sees: a crashed consumer's events, taken over and nacked (a failing handler, the
 * retry backoff), then lost in a failover to a replica that was behind: nothing at all in the
 * log, `counters.lost` 0. The case the commit says it covers.
 *
 * Failed for me: every run, both client kinds (ioredis 6 of 6, node-redis 5 of 5).
 *
 * Suggested fix: use the let-go IDs themselves as evidence: on the first check after a
 * reconnect, look (XRANGE, as for `readBeforeReconnect`) for the highest let-go ID not yet
 * checked; gone, neither trimmed nor deleted: a rollback, and take the let-go IDs after the
 * newest entry at or before it (bounded by the max of `readBeforeReconnect`, `lastRead` at the
 * check's sending (`readAt`), and the highest let-go ID, never the `lastRead` moved by the
 * read in the same transaction).
 *
 * Fixed: the check after a reconnect looks for the newest event it let go of too, and a fall of
 * entries-added says what it let go of up to the newest one (letGo.ts `newestReadOrLetGo`).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, type ClientKind, readsStopped, take, waitFor } from './support/clients.js';
import { claimedThenNacked, privateSink } from './support/privateSink.js';

async function run(ctx: TestContext, kind: ClientKind) {
  const { server, c, lines, s, sink, iter } = await privateSink(ctx, kind, 'revy-claim');
  await s.add('e', 'a0');
  const [a0] = await take(iter, 1);
  await a0?.ack();
  await iter.return?.();
  // No subscriber: the sink's read loop stops reading once its in-flight blocking read ends.
  await readsStopped(c);
  // The snapshot: a0, acked. What follows lives in memory only.
  await c.cmd('SAVE');
  // Another instance reads them and crashes; this one takes them over after the grace period and nacks them.
  // The other instance beat (the sink's liveness record) until it crashed: seen stale a grace period
  // later, every stream is swept and its events claimed (with no beat of it, only the backstop sweep
  // found them, 10 s later: the same claim).
  const [sec, usec] = (await c.cmd('TIME')) as [string, string];
  await c.cmd('ZADD', sinkWideKeys('g').instances, Number(sec) * 1000 + Math.floor(Number(usec) / 1000), 'crashed');
  const ids = await claimedThenNacked(c, s, sink);
  const pend = (await c.cmd('XPENDING', s.key, 'g')) as unknown[];
  expect(Number(pend[0])).toBe(3);
  // Redis comes back from the snapshot (a failover to a replica that was behind): b* are gone,
  // pending for no one, and no instance holds them.
  await server.kill();
  await server.restart();
  expect(await waitFor(() => c.cmd('XLEN', s.key).catch(() => undefined), { what: 'Redis back' })).toBe(1);
  await waitFor(() => s.add('e', 'n0').catch(() => undefined), { what: 'add n0 after the restart' });
  const third = sink[Symbol.asyncIterator]();
  const [n0] = await take(third, 1, 10_000);
  expect(n0?.text()).toBe('n0');
  await n0?.ack();
  await third.return?.();
  // b0..b2 must be said somewhere: counted, or in any line that says events may be lost.
  const log = () =>
    lines
      .filter((l) => l.level !== 'debug')
      .map((l) => String(l.msg))
      .join(' | ');
  const said = () => sink.counters.lost > 0 || lines.some((l) => l.level !== 'debug' && /lost/i.test(String(l.msg)));
  await waitFor(said, { timeout: 10_000, what: `b0..b2 (${ids.join(', ')}) said lost; log: ${log()}` }).catch((err) => {
    throw new Error(`${String(err)}; log at the end: ${log()}`);
  });
}

describe.concurrent.each(CLIENT_KINDS)('claimed events let go of, then lost in a rollback (%s)', (kind) => {
  it('a crashed instance`s events, taken over and nacked, then lost: said', (ctx) => run(ctx, kind), 40_000);
});
