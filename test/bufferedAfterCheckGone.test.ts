/**
 * A sink holding events pending at its last check (in handlers) and others
 * read after that check (still buffered) when the stream's key is deleted or
 * expires: all are counted lost (outside review X, both clients). The count
 * was max(estimate, buffered): the estimate (unread and pending at the last
 * check) and the buffered events read after it are disjoint, so the max hid
 * the smaller, and 3 of 6 went uncounted (8/8 before). Now the buffered
 * events past the check's last entry are added to the estimate.
 */
import { describe, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, readBlocked, recordingLogger, take, uniqueName, waitFor, within } from './support/clients.js';
import { ownServer } from './support/ownServer.js';

// Long: the keep-alive check (every grace period / 4) must not run between the reads and the key's end.
const GRACE = 8000;

describe.each(CLIENT_KINDS)('held and buffered events as the stream goes (%s)', (kind) => {
  // Its own server: `readBlocked` must see this test's read only.
  const own = ownServer(kind);

  for (const gone of ['deleted', 'expired'] as const) {
    it(`${gone}: all 6 counted lost`, async (ctx) => {
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('rxb'), own.c.redis, { maxLen: 0, logger });
      ctx.onTestFinished(() => s.destroy().catch(() => {}));
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 5000, ackGracePeriodMs: GRACE, bufferSize: 10 });
      ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
      // Three events read by a checked read (the check sees them unread, the read makes them pending).
      for (const p of ['p0', 'p1', 'p2']) await s.add('e', p);
      const sub = sink.subscribe();
      const held = (await take(sub, 3)) as SinkEvent[];
      // Three more, each brought by a blocking read (no check), left in the buffer.
      for (const q of ['q0', 'q1', 'q2']) {
        await readBlocked(own.c);
        const before = sink.counters.delivered;
        await s.add('e', q);
        await waitFor(() => sink.counters.delivered > before, { what: `${q} read` });
      }
      await waitFor(() => sub.size === 3, { what: 'q0-q2 buffered' });
      if (gone === 'deleted') await own.c.cmd('DEL', s.key);
      else await own.c.cmd('PEXPIRE', s.key, 1);
      await waitFor(async () => Number(await own.c.cmd('EXISTS', s.key)) === 0, { what: 'the key gone' });
      await waitFor(() => lines.some((l) => l.msg?.startsWith('stream key is gone')), { what: 'the key found gone' });
      for (const ev of held) await ev.nack().catch(() => {});
      await waitFor(() => sink.counters.lost >= 6, { timeout: 5000, what: '6 counted lost' }).catch((e: Error) => {
        const said = lines.filter((l) => l.level !== 'debug').map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`);
        throw new Error(`${e.message} (lost ${sink.counters.lost}):\n${said.join('\n')}`);
      });
    }, 30_000);
  }
});
