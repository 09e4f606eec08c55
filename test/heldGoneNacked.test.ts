/**
 * Outside review U (last five commits): the cleanup of b186bde silently switches itself off for good
 * once 10 000 events deleted while handled were settled otherwise than by an ack.
 *
 * Mechanism: `HeldGone.note` (src/internal/heldGone.ts:31-40) remembers every event an
 * in-progress touch found deleted while handled (inProgress.ts:49, sinkHolds.ts:94-97); only
 * `HeldGone.acked` (heldGone.ts:43-58, called from sink.ts:113 on XACK) forgets one. An
 * event that is nacked instead (a failing handler: `touch` with the nack flag XACKs and ZREMs
 * it in Redis, scripts.ts:273-275, and reports it lost), dead-lettered, or whose handler never
 * settles it stays in `#held` for the life of the sink. Once `#count` reaches MAX_HELD
 * (heldGone.ts:17, now `heldGoneLimits.max`), `note` returns without a word (heldGone.ts:33): from then on no event is
 * remembered, so no ack removes its delays entry, and on a stream without a TTL (a persistent
 * delays set, scripts.ts EXPIRE_DELAYS) each one stays for good again: the leak review T had
 * found, back after enough failures on a busy, MAXLEN-trimmed stream; nothing logged.
 *
 * What the user sees: after a while in production, `{stream}:sink:<name>:delays` keys that grow
 * without bound again, and the sink process holding 10 000 dead IDs.
 *
 * Fix: forget an ID on every settlement (nack, dead letter, loss report, close), not only on
 * XACK; and when the cap is met, log it (or evict the oldest) rather than stop silently.
 */
import { describe, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { heldGoneLimits } from '../packages/pulse-streaming/src/internal/heldGone.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { forThisFile } from './support/forThisFile.js';
import { RedisServer } from './support/redisServer.js';

// A second or more, as for every test a loaded machine can starve (vitest.config.ts): at 600 ms, 100 handlers
// at once in a loaded CI run outlived their holds, and events were claimed and reported lost under them.
const GRACE = 1500;
// The limit, lowered from 10 000 for this file: the test failed with FAILED = the limit, passed with 10 fewer.
forThisFile(heldGoneLimits, 'max', 500);
const FAILED = heldGoneLimits.max;

describe.concurrent.each(CLIENT_KINDS)('events deleted while handled, then nacked (%s)', (kind) => {
  it('do not stop the delays entry of a later one deleted while handled from leaving at its ack', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('revUheld'), c.redis, { logger: logger as Logger, maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 20_000, 'close'));
    const delays = `{${s.key}}:sink:g:delays`;
    let failedDone = 0;
    let lastAcked: string | undefined;
    const run = sink.process(
      async (ev) => {
        // Deleted while handled (as a MAXLEN trim of a busy stream does), still handled here.
        await s.remove(ev.id);
        await ev.inProgress(); // 'gone': kept in the delays set, remembered by HeldGone
        if (ev.eventName === 'fail') {
          failedDone++;
          throw new Error('downstream refused it'); // nacked: reported lost, never acked
        }
        lastAcked = ev.id; // acked on return
      },
      { concurrency: 100, retry: false },
    );
    run.catch(() => {});
    for (let i = 0; i < FAILED; i += 500)
      await Promise.all(Array.from({ length: Math.min(500, FAILED - i) }, (_, j) => s.add('fail', String(i + j))));
    await waitFor(() => failedDone >= FAILED, { timeout: 90_000, what: 'the failing events handled' }).catch((e: unknown) => {
      const log = lines.map((l) => `${l.level}: ${String(l.msg)}`).slice(-5);
      throw new Error(`${String(e)}: ${failedDone} done, lost ${sink.counters.lost}, last log ${JSON.stringify(log)}`);
    });
    await waitFor(async () => Number(await c.cmd('XPENDING', s.key, 'g').then((r) => (r as unknown[])[0])) === 0, {
      timeout: 30_000,
      what: 'the failed events settled',
    });
    const id = (await s.add('ok', 'last')) as string;
    await waitFor(() => lastAcked === id, { timeout: 10_000, what: 'the last event handled (acked)' });
    // As with the first such event: its delays entry leaves once acked.
    await waitFor(async () => (await c.cmd('ZSCORE', delays, id)) === null, {
      timeout: 6 * GRACE,
      what: `the delays entry of ${id}, deleted while handled then acked, removed`,
    });
  }, 180_000);
});
