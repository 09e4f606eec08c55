/**
 * Outside review R: a stream destroyed under a sink instance that has no subscriber
 * at the moment (a `for await` loop left, a `process()` aborted, between
 * runs): the events it took go unreported.
 *
 * `stream.destroy()` leaves an obituary "reported lost by a live instance of
 * that sink" (stream.ts:287-298, the destroy() doc). Only the read path finds the key gone
 * (`applyTrimCheck` 'nokey' -> `streamGone`, which takes the obituary), and
 * the read loop does not read while no subscription is there. The background
 * paths that do hit the missing key leave it to that read loop:
 * - the give-back of the events the subscriber left behind
 *   (packages/pulse-streaming/src/internal/giveBack.ts:322-357 `#send`) gets
 *   NOGROUP and retries every few seconds for as long as the sink is open,
 *   without `recover` (which `SinkHolds.recheck` calls on NOGROUP,
 *   sinkHolds.ts:205); at `close()` it then says "they come back after the
 *   grace period ..., unless Redis lost them in a rollback" (giveBack.ts:347):
 *   they went with the stream and never come back;
 * - a claim's NOGROUP "the read loop recovers the group" (sinkClaims.ts:143),
 *   and with no subscriber there is no room, so no claim even runs.
 * What the user sees: 5 pending events deleted by destroy() and nothing said
 * for as long as the instance runs (lost 0, no line); if it is closed before
 * a subscriber comes back, and no other instance runs within 10 minutes, never.
 * With a subscriber waiting, the same destroy is reported at once (probe:
 * "events deleted with their stream (destroy) before this sink acked them (unread, buffered, or
 * being handled)": it said "handled", which an event being handled at the destroy also counts as,
 * and made a reconciliation of handled + lost look like more events than were added).
 * Both clients; the subscriber left before and after the destroy, or stalled (2026-12-07: an
 * instance whose subscriptions all stalled reads nothing, as one without any).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;

async function run(ctx: TestContext, kind: ClientKind, how: 'left first' | 'left after' | 'stalled') {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('revRdestroy'), c.redis, { logger: logger as Logger, maxLen: 0 });
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE, bufferSize: 5, maxPolled: 5 });
  ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
  const sub = sink.subscribe();
  const it0 = sub[Symbol.asyncIterator]();
  for (let i = 0; i < 6; i++) await s.add('e', `b${i}`);
  await ((await within(it0.next(), 10_000, 'b0')).value as SinkEvent).ack();
  await waitFor(() => sub.size >= 5, { what: 'b1..b5 buffered' });
  if (how === 'stalled') {
    // The loop stays in its body: after a grace period b1..b5 are given back, and the instance,
    // its only subscription stalled, reads nothing: it learns of the destroy as one without any.
    await waitFor(() => lines.some((l) => /took no event for a grace period/.test(String(l.msg))), {
      timeout: 5 * GRACE,
      what: 'stalled',
    });
    await waitFor(() => lines.some((l) => /never handed out given back/.test(String(l.msg))), { what: 'given back' });
    await s.destroy();
  } else if (how === 'left first') {
    await it0.return?.(); // b1..b5 given back: pending for this consumer, count restored
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 5, {
      what: 'b1..b5 pending',
    });
    await waitFor(() => lines.some((l) => /never handed out given back/.test(String(l.msg))), { what: 'given back' });
    await s.destroy();
  } else {
    await s.destroy();
    await it0.return?.(); // the give-back meets the missing key
  }
  // The instance stays open: a live instance reports what the destroy took from the sink.
  await waitFor(() => sink.counters.lost === 5, { timeout: 5 * GRACE, what: 'b1..b5 counted lost' }).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${lines
        .filter((l) => l.level !== 'debug')
        .map((l) => String(l.msg))
        .join(' | ')}`,
    );
  });
  // Said as what the sink had not acked (pending events count, even one a handler was on).
  expect(lines.some((l) => /deleted with their stream \(destroy\) before this sink acked them/.test(String(l.msg)))).toBe(true);
  await within(sink.close(), 10_000, 'close');
  expect(lines.some((l) => /they come back after the grace period/.test(String(l.msg)))).toBe(false);
}

describe.concurrent.each(CLIENT_KINDS)('stream destroyed under a sink instance with no subscriber (%s)', (kind) => {
  it('events given back before the destroy: counted lost while the instance runs', (ctx) => run(ctx, kind, 'left first'), 30_000);
  it('events given back after the destroy: counted lost, never said to come back', (ctx) => run(ctx, kind, 'left after'), 30_000);
  it(
    'its only subscription stalled, events given back: counted lost while the instance runs',
    (ctx) => run(ctx, kind, 'stalled'),
    30_000,
  );
});
