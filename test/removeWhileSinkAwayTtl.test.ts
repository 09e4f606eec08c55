/**
 * Outside review AK (defect 4; line numbers as of commit 41e36ff): a sliding-TTL stream kept alive by a producer while its sink
 * has no instance running. The sink registry (`{pulse:stream:<n>}:sinks`)
 * follows the stream's TTL only while an instance sweeps, so it expires
 * although the group is still there. `stream.remove()` then counts the
 * removal for no sink, yet records max-deleted-entry-id as "ours"
 * (`removeEntries`): the sink's trim checks trust the tombstones as
 * accounted for, its read across them leaves entries-read invalid, and the
 * resync that follows counts nothing. The removed events are lost without a
 * count or a line.
 * Failed before the fix: 2 of 2 (both clients: 19 of 21 delivered, lost 0, no line).
 * Fixed: `removeEntries` counts the removal for every group of the stream, not only the registry's.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkRegistryKey } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, recordingLogger, take, uniqueName, waitFor, within } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('remove() on a sliding TTL stream whose sink is away (%s)', (kind) => {
  it('events removed while no instance runs are counted lost when the sink comes back', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('revAKttl'), c.redis, { logger: logger as Logger, maxLen: 0, ttlMs: 2000, slidingTtl: true });
    ctx.onTestFinished(() => s.destroy());
    const opts = { blockMs: 100, ackGracePeriodMs: 1000 };
    const first = await s.newSink('g', opts);
    const sub = first.subscribe();
    await s.add('e', 'a0');
    await (await take(sub, 1))[0]?.ack();
    await within(first.close(), 10_000, 'close');

    // The producer keeps the stream alive; the sink is away until its registry expired.
    let added = 0;
    const ids: string[] = [];
    const add = async (p: string) => {
      ids.push(await s.add('e', p));
      added++;
    };
    await waitFor(
      async () => {
        await add(`k${added}`);
        return Number(await c.cmd('EXISTS', sinkRegistryKey(s.name))) === 0;
      },
      { timeout: 15_000, interval: 200, what: 'sink registry expired' },
    );
    expect(Number(await c.cmd('XINFO', 'GROUPS', s.key).then((g) => (g as unknown[]).length))).toBe(1);
    for (let i = 0; i < 5; i++) await add(`b${i}`);
    // An operator removes two events the sink has not read.
    await s.remove(ids[ids.length - 4] as string, ids[ids.length - 3] as string);
    // The producer pauses: the stream stays (as its next adds would keep it) while the sink looks.
    await c.cmd('PEXPIRE', s.key, '60000');

    const second = await s.newSink('g', opts);
    ctx.onTestFinished(() => within(second.close(), 10_000, 'close'));
    const got: SinkEvent[] = [];
    const sub2 = second.subscribe();
    void (async () => {
      for await (const ev of sub2) {
        got.push(ev as SinkEvent);
        await ev.ack();
      }
    })();
    await waitFor(() => got.length === added - 2, { timeout: 8000, what: 'the events left delivered' });
    await waitFor(() => second.counters.lost === 2, { timeout: 8000, what: 'the 2 removed events counted lost' }).catch(
      (err: unknown) => {
        throw new Error(
          `${(err as Error).message}: delivered ${got.length} of ${added}, counters ${JSON.stringify(second.counters)}; log: ${lines
            .filter((l) => l.level !== 'debug')
            .map((l) => `${l.level}: ${String(l.msg)}`)
            .join(' | ')}`,
        );
      },
    );
  }, 40_000);
});
