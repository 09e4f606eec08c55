/**
 * Events this instance claimed (a crashed instance's, taken over after the
 * grace period) and then nacked, lost when the stream's key is deleted
 * outside the library: said maybe lost. The claimed IDs are above what this
 * instance read itself; the report of a key gone took let-go IDs up to its
 * own reads only (streamGone.ts), so nothing was said.
 *
 * Failed before the fix: every run, both clients (2 runs each).
 * Fixed: streamGone.ts takes let-go IDs up to the newest one (`newestReadOrLetGo`)
 * when the key is not created anew, as the rollback paths do.
 */
import { describe, it, type TestContext } from 'vitest';
import { sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, type ClientKind, readsStopped, take, waitFor } from './support/clients.js';
import { claimedThenNacked, privateSink } from './support/privateSink.js';

async function run(ctx: TestContext, kind: ClientKind) {
  const { c, lines, s, sink, iter } = await privateSink(ctx, kind, 'letgo-del');
  await s.add('e', 'a0');
  const [a0] = await take(iter, 1);
  await a0?.ack();
  await iter.return?.();
  // No subscriber: the sink stops reading once its blocking read returns (it must not read b0).
  await readsStopped(c);
  // Another instance reads them and crashes; this one takes them over after the grace period and nacks them.
  // The other instance beat (the sink's liveness record) until it crashed: seen stale a grace period
  // later, every stream is swept and its events claimed (with no beat of it, only the backstop sweep
  // found them, 10 s later: the same claim).
  const [sec, usec] = (await c.cmd('TIME')) as [string, string];
  await c.cmd('ZADD', sinkWideKeys('g').instances, Number(sec) * 1000 + Math.floor(Number(usec) / 1000), 'crashed');
  const ids = await claimedThenNacked(c, s, sink);
  await c.cmd('DEL', s.key);
  const third = sink[Symbol.asyncIterator]();
  const idsOf = (l: (typeof lines)[number]) => (l.obj as { ids?: unknown }).ids;
  const log = () =>
    lines
      .filter((l) => l.level !== 'debug')
      .map((l) => `${String(l.msg)} ${JSON.stringify(idsOf(l) ?? '')}`)
      .join(' | ');
  const said = () =>
    sink.counters.lost >= 3 ||
    lines.some((l) => l.level !== 'debug' && ids.every((id) => (idsOf(l) as string[] | undefined)?.includes(id)));
  await waitFor(said, { timeout: 10_000, what: `b0..b2 (${ids.join(', ')}) said lost; log: ${log()}` }).catch((err) => {
    throw new Error(`${String(err)}; log at the end: ${log()}`);
  });
  await third.return?.();
}

describe.concurrent.each(CLIENT_KINDS)('claimed events let go of, then deleted with their key (%s)', (kind) => {
  it('a crashed instance`s events, taken over and nacked, then DEL: said with their IDs', (ctx) => run(ctx, kind), 40_000);
});
