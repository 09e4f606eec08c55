/**
 * An event a sink read after its last check of the stream (a blocking read
 * brought it: that check's loss estimate does not have it), held by a
 * handler while the stream's key went (it expired, or was deleted outside
 * the library), then failed (`nack()`, or a `process()` handler throwing):
 * nothing can redeliver it, and it is counted lost, once, with both clients.
 * It was not counted at all: the estimate (unread and pending at the last
 * check) had none, and the nack that found the key gone took the event for
 * one the read path had accounted for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  connect,
  readBlocked,
  recordingLogger,
  stays,
  type TestClient,
  take,
  uniqueName,
  waitFor,
  within,
} from './support/clients.js';

// Long: the keep-alive check (every grace period / 4) must not run between the read and the key's end.
const GRACE = 8000;

describe.concurrent.each(CLIENT_KINDS)('an event read after the last check, held as its stream goes (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const gone of ['deleted', 'expired'] as const) {
    for (const via of ['nack()', 'process()'] as const) {
      it(`${gone}, then failed by ${via}: counted lost once`, async (ctx) => {
        const { logger, lines } = recordingLogger();
        const s = new Stream(uniqueName('hac'), c.redis, { maxLen: 0, logger });
        ctx.onTestFinished(() => s.destroy().catch(() => {}));
        const sink = await s.newSink('g', { blockMs: 5000, ackGracePeriodMs: GRACE });
        let held!: (ev: SinkEvent) => void;
        const heldP = new Promise<SinkEvent>((r) => {
          held = r;
        });
        let release!: () => void;
        const releaseP = new Promise<void>((r) => {
          release = r;
        });
        const sub = via === 'nack()' ? sink.subscribe() : undefined;
        const done =
          via === 'process()'
            ? sink
                .process(
                  async (ev) => {
                    held(ev);
                    await releaseP;
                    throw new Error('downstream failed');
                  },
                  { retry: { delayMs: 100, factor: 1, maxDelayMs: 100, jitter: 0 } },
                )
                .catch(() => {})
            : undefined;
        ctx.onTestFinished(async () => {
          release();
          await within(sink.close(), 10_000, 'close');
          await done;
        });
        // The sink has checked the stream (empty) and blocks: what it reads now is past that check.
        await readBlocked(c);
        await s.add('e', 'b0');
        const ev = sub ? ((await take(sub, 1))[0] as SinkEvent) : await heldP;
        expect(ev.text()).toBe('b0');
        if (gone === 'deleted') await c.cmd('DEL', s.key);
        else await c.cmd('PEXPIRE', s.key, 1);
        await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { what: 'the key gone' });
        if (sub) await ev.nack();
        else release();
        await waitFor(() => sink.counters.lost === 1, { timeout: 10_000, what: 'b0 counted lost' }).catch((e: Error) => {
          const said = lines.map((l) => `${l.msg} ${JSON.stringify(l.obj)}`);
          throw new Error(`${e.message} (lost ${sink.counters.lost}):\n${said.join('\n')}`);
        });
        await stays(() => sink.counters.lost === 1, 500, 'b0 counted once');
      });
    }
  }

  it('an event read with the check (in its estimate), deleted, then nacked: counted once, nothing said maybe lost', async (ctx) => {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('hac'), c.redis, { maxLen: 0, logger });
    ctx.onTestFinished(() => s.destroy().catch(() => {}));
    // Added before the sink's first read: that read's check has it unread, the read takes it.
    await s.add('e', 'a0');
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 5000, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const [ev] = (await take(sink.subscribe(), 1)) as [SinkEvent];
    await c.cmd('DEL', s.key);
    await ev.nack();
    await waitFor(() => sink.counters.lost === 1, { timeout: 10_000, what: 'a0 counted lost (the estimate)' });
    await stays(() => sink.counters.lost === 1, 500, 'a0 counted once');
    // This instance reported the estimate itself: nothing to say of a holder's report.
    expect(lines.filter((l) => /nacked after their stream or group was gone/.test(l.msg ?? ''))).toEqual([]);
  });
});
