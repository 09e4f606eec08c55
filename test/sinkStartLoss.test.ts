/**
 * A sink started before its stream's first entry reports no loss when nothing was lost, and still
 * reports what is trimmed after its start. Its group's entries-read counter was left unset for a
 * start other than 0 or the end (a Date, `{ after }`) and for `'oldest'` over a stream with
 * tombstones (a `stream.remove()` before the sink existed): the first trim check resynced it, found
 * the group behind the first entry and said "events trimmed or deleted before this sink read them:
 * how many is unknown" (PULSE_EVENTS_MAYBE_LOST) though nothing was trimmed, or what `remove()`
 * deleted before the sink existed (an outside review). Readers counted from their start already:
 * the group is now created the same way (everything no longer in the stream went before it).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type StartAt, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, stays, take, uniqueName, waitFor } from './support/clients.js';

/** A grace period whose idle trim checks (every quarter of it) run several times within STILL_MS. */
const GRACE = 400;
const STILL_MS = 400;

describe.concurrent.each(CLIENT_KINDS)('sink start before the first entry: losses as they are (%s)', (kind) => {
  async function setup(ctx: TestContext) {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('start-loss'), c.redis, { maxLen: 0, logger });
    ctx.onTestFinished(() => s.destroy());
    const lossLines = () =>
      lines
        .filter((l) => l.level === 'warn' && /lost|trimmed or deleted/i.test(`${l.msg} ${JSON.stringify(l.obj)}`))
        .map((l) => l.msg);
    return { c, s, lossLines };
  }

  const starts: Array<[string, () => StartAt]> = [
    ['a Date an hour before the first entry', () => new Date(Date.now() - 3_600_000)],
    ['a Date of 1 ms after the epoch', () => new Date(1)],
    ["{ after: '1-0' }", () => ({ after: '1-0' })],
  ];
  for (const [label, startAt] of starts) {
    it(`startAt ${label}: every event delivered and acked, no loss said`, async (ctx) => {
      const { s, lossLines } = await setup(ctx);
      for (let i = 0; i < 3; i++) await s.add('e', `${i}`);
      const sink = await s.newSink('billing', { startAt: startAt(), ackGracePeriodMs: GRACE, blockMs: 100 });
      ctx.onTestFinished(() => sink.close());
      const got = await take(sink.subscribe(), 3);
      expect(got.map((e) => e.text())).toEqual(['0', '1', '2']);
      await sink.ack(...got);
      // One more event: the sink's next reads and checks run, then its idle checks.
      await s.add('e', '3');
      const [last] = await take(sink.subscribe(), 1);
      await last?.ack();
      await stays(() => lossLines().length === 0, STILL_MS, 'no loss said');
      await sink.close(); // checks the last reads and says what it held back
      expect(sink.counters.lost).toBe(0);
      expect(lossLines()).toEqual([]);
    });
  }

  it("startAt 'oldest' after remove() of middle entries: the rest delivered, no loss said", async (ctx) => {
    const { s, lossLines } = await setup(ctx);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await s.add('e', `${i}`));
    await s.remove(ids[1] as string, ids[2] as string);
    const sink = await s.newSink('billing', { startAt: 'oldest', ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    const got = await take(sink.subscribe(), 3);
    expect(got.map((e) => e.text())).toEqual(['0', '3', '4']);
    await sink.ack(...got);
    await stays(() => lossLines().length === 0, STILL_MS, 'no loss said');
    await sink.close();
    expect(sink.counters.lost).toBe(0);
    expect(lossLines()).toEqual([]);
  });

  it('startAt a Date before the first entry: entries trimmed after the start, before the read, are counted', async (ctx) => {
    const { c, s } = await setup(ctx);
    for (let i = 0; i < 5; i++) await s.add('e', `${i}`);
    const sink = await s.newSink('billing', { startAt: new Date(1), ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    // Exact trim (=): the 3 oldest go, unread by the sink that started before them.
    await c.cmd('XTRIM', s.key, 'MAXLEN', '=', 2);
    const got = await take(sink.subscribe(), 2);
    expect(got.map((e) => e.text())).toEqual(['3', '4']);
    await waitFor(() => sink.counters.lost === 3, { what: '3 trimmed events counted lost' });
  });

  it("startAt 'oldest': remove() after the start, before the read, is counted", async (ctx) => {
    const { s } = await setup(ctx);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await s.add('e', `${i}`));
    const sink = await s.newSink('billing', { startAt: 'oldest', ackGracePeriodMs: GRACE, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    await s.remove(ids[1] as string, ids[2] as string);
    const got = await take(sink.subscribe(), 3);
    expect(got.map((e) => e.text())).toEqual(['0', '3', '4']);
    await waitFor(() => sink.counters.lost === 2, { what: '2 removed events counted lost' });
  });
});
