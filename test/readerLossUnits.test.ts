/**
 * Pure unit tests, without a server, of how losses are reported
 * (`LossReport`: logger lines, or rate-limited `PulseWarning` process
 * warnings) and of a reader's loss ledger arithmetic (`LossLedger`).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../packages/pulse-streaming/src/index.js';
import { LossReport } from '../packages/pulse-streaming/src/internal/lossReport.js';
import { type Found, LossLedger } from '../packages/pulse-streaming/src/internal/readerLoss.js';
import { recordingLogger, waitFor } from './support/clients.js';

describe('LossReport', () => {
  const seen: Error[] = [];
  const listener = (w: Error): void => {
    if (w.name === 'PulseWarning') seen.push(w);
  };
  process.on('warning', listener);
  afterEach(() => {
    seen.length = 0;
  });

  /** Process warnings are emitted on the next tick. */
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const counts = (): number[] => seen.map((w) => Number(/: (\d+) events? lost/.exec(w.message)?.[1]));

  it('without a logger: the first loss warns at once, with the count and who lost it', async () => {
    const r = new LossReport(undefined, 'reader of stream orders', 60_000);
    r.lost(7, { stream: 'orders' }, 'events trimmed before this reader read them');
    await tick();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.message).toContain('reader of stream orders: 7 events lost');
    expect(seen[0]?.message).toContain('events trimmed before this reader read them');
    expect((seen[0] as Error & { code?: string }).code).toBe('PULSE_EVENTS_LOST');
    void r.close();
  });

  it('later losses within the interval are summed into one warning at its end', async () => {
    // 400 ms, not 100: after the summed warning the test must add the next loss within the next
    // interval, and a loaded machine can hold it up past 100 ms (the interval then ends quiet, and
    // that loss rightly warns at once).
    const r = new LossReport(undefined, 'sink billing on stream orders', 400);
    r.lost(1, {}, 'm');
    r.lost(2, {}, 'm');
    r.lost(3, {}, 'm');
    await tick();
    expect(counts()).toEqual([1]);
    await waitFor(() => seen.length === 2, { timeout: 2000, what: 'the summed warning' });
    expect(counts()).toEqual([1, 5]);
    // The next interval runs: a loss in it waits for its end too.
    r.lost(4, {}, 'm');
    await tick();
    expect(counts()).toEqual([1, 5]);
    await waitFor(() => seen.length === 3, { timeout: 2000, what: 'the next summed warning' });
    expect(counts()).toEqual([1, 5, 4]);
    void r.close();
  });

  it('after a quiet interval, the next loss warns at once again', async () => {
    const r = new LossReport(undefined, 'x', 50);
    r.lost(1, {}, 'm');
    await new Promise((res) => setTimeout(res, 150));
    r.lost(2, {}, 'm');
    await tick();
    expect(counts()).toEqual([1, 2]);
    void r.close();
  });

  it('close() reports what the interval summed, once; losses after close warn at once', async () => {
    const r = new LossReport(undefined, 'x', 60_000);
    r.lost(1, {}, 'm');
    r.lost(10, {}, 'm');
    r.lost(20, {}, 'm');
    void r.close();
    void r.close();
    await tick();
    expect(counts()).toEqual([1, 30]);
    r.lost(5, {}, 'm');
    await tick();
    expect(counts()).toEqual([1, 30, 5]);
  });

  it('close() with nothing pending warns nothing', async () => {
    const r = new LossReport(undefined, 'x', 60_000);
    void r.close();
    r.lost(0, {}, 'm');
    await tick();
    expect(seen).toEqual([]);
  });

  it('with a logger: a warn line per loss with the fields and the count, and no process warning', async () => {
    const { logger, lines } = recordingLogger();
    const r = new LossReport(logger as Logger, 'x', 60_000);
    r.lost(3, { stream: 's' }, 'events trimmed');
    r.lost(4, { stream: 's' }, 'events trimmed');
    void r.close();
    await tick();
    expect(seen).toEqual([]);
    expect(lines).toEqual([
      { level: 'warn', obj: { stream: 's', count: 3 }, msg: 'events trimmed' },
      { level: 'warn', obj: { stream: 's', count: 4 }, msg: 'events trimmed' },
    ]);
  });

  it('a loss that cannot be counted: a warn line with a logger, else one process warning per interval', async () => {
    // These went to the logger only, which is silent by default: a possible loss nobody was told of.
    const r = new LossReport(undefined, 'reader of stream orders', 60_000);
    r.unknown({ stream: 'orders' }, 'stream key is gone: how many is unknown');
    r.unknown({ stream: 'other' }, 'stream key is gone: how many is unknown');
    await tick();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.message).toContain('reader of stream orders: events may be lost (stream orders): stream key is gone');
    expect((seen[0] as Error & { code?: string }).code).toBe('PULSE_EVENTS_MAYBE_LOST');
    // Counted losses keep their own warnings.
    r.lost(2, {}, 'm');
    await tick();
    expect(counts()).toEqual([Number.NaN, 2]);
    const { logger, lines } = recordingLogger();
    const withLogger = new LossReport(logger as Logger, 'x', 60_000);
    withLogger.unknown({ stream: 's' }, 'm');
    withLogger.unknown({ stream: 's' }, 'm');
    await tick();
    expect(seen).toHaveLength(2);
    expect(lines).toEqual([
      { level: 'warn', obj: { stream: 's' }, msg: 'm' },
      { level: 'warn', obj: { stream: 's' }, msg: 'm' },
    ]);
    // The one held back within the interval comes at close (or at the interval's end), never dropped.
    void r.close();
    await tick();
    expect(seen).toHaveLength(3);
    expect(seen[2]?.message).toContain('events may be lost (stream other)');
  });

  it('unknown losses within the interval are said as one warning at its end, with their number', async () => {
    const r = new LossReport(undefined, 'x', 50);
    r.unknown({ stream: 'a' }, 'm');
    r.unknown({ stream: 'b' }, 'm');
    r.unknown({ stream: 'c' }, 'm');
    await tick();
    expect(seen).toHaveLength(1);
    await waitFor(() => seen.length === 2, { timeout: 2000, what: 'the warning at the end of the interval' });
    expect(seen).toHaveLength(2);
    expect(seen[1]?.message).toContain('2 warnings that events may be lost, the last: events may be lost (stream c)');
    void r.close();
    await tick();
    expect(seen).toHaveLength(2);
  });

  it('a pending warning does not keep the process alive (its timer is unref-ed)', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const r = new LossReport(undefined, 'x', 60_000);
    r.lost(1, {}, 'm');
    r.lost(1, {}, 'm');
    // An unref-ed timer is not an active resource.
    expect(process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length).toBe(before);
    void r.close();
  });
});

describe('LossLedger', () => {
  const ok = (added: number, ahead: number, deleted = 0): unknown[] => ['ok', added, ahead, deleted];
  /** A check's finding as one value: what it says, else 'retry', else the count. */
  const res = (f: Found): number | string => f.say ?? (f.retry ? 'retry' : f.lost);

  it('lost = added - base - read - ahead, counted once', () => {
    // A reader at 'oldest' of an empty stream: base 0.
    const l = new LossLedger({ base: 0, cursor: '0-0' });
    l.onRead(100);
    // 10,000 added, trimmed to 1000 ahead of the cursor after reading 100.
    expect(res(l.apply(ok(10_000, 1000), l.begin(0, '1-99')))).toBe(8900);
    l.onRead(1000);
    expect(res(l.apply(ok(10_000, 0), l.begin(1000, '1-9999')))).toBe(0);
    expect(l.lost).toBe(8900);
    expect(l.read + l.lost).toBe(10_000);
  });

  it('a check is due only after reads, one at a time, at most once per interval', () => {
    // A check that takes no time: the spacing of slow ones (next test) measures begin() to apply()
    // on performance.now(), and a loaded worker (a GC pause between two calls) made this one slow.
    const clock = vi.spyOn(performance, 'now').mockReturnValue(1000);
    try {
      const l = new LossLedger({ base: 0, cursor: '0-0' });
      expect(l.due(10_000)).toBe(false);
      l.onRead(1);
      expect(l.due(10_000)).toBe(true);
      const p = l.begin(10_000, '1-0');
      l.onRead(1);
      expect(l.due(20_000)).toBe(false); // in flight
      l.apply(['same', 0], p);
      expect(l.due(10_050)).toBe(false); // too soon
      expect(l.due(10_200)).toBe(true);
    } finally {
      clock.mockRestore();
    }
  });

  it('a slow check spaces the next ones out (1% of the time), within bounds', async () => {
    const l = new LossLedger({ base: 0, cursor: '0-0' });
    l.onRead(1);
    const p = l.begin(0, '1-0');
    // Wait on the clock the ledger reads: a timer may fire a fraction of a ms early.
    const sent = performance.now();
    while (performance.now() - sent < 21) await new Promise((r) => setTimeout(r, 5));
    l.apply(['same', 0], p);
    expect(l.gap).toBeGreaterThanOrEqual(2000);
    expect(l.gap).toBeLessThanOrEqual(5000);
    l.onRead(1);
    expect(l.due(1000)).toBe(false);
    expect(l.due(5000)).toBe(true);
    l.apply(['same', 0], l.begin(5000, '1-1'));
    expect(l.gap).toBeLessThan(1000);
  });

  it("'same' keeps the count and moves the exact point", () => {
    const l = new LossLedger({ base: 5, cursor: '1-0', deleted: 7 });
    expect(l.checkArgs({ cursor: '1-0', read: 0 })).toEqual(['check', '1-0', 1000, '1-0', 7]);
    l.onRead(3);
    const p = l.begin(0, '1-3');
    expect(l.checkArgs(p)).toEqual(['check', '1-3', 1000, '1-0', 7]);
    expect(res(l.apply(['same', 9], p))).toBe(0);
    // (What follows the first five is for a stream gone back in time: readerRollback.test.ts.)
    expect(l.checkArgs(l.begin(1000, '1-4')).slice(0, 5)).toEqual(['check', '1-4', 1000, '1-3', 9]);
  });

  it('an unknown start has no exact point to compare with', () => {
    const l = new LossLedger({ base: undefined, cursor: '5-0', deleted: 3 });
    expect(l.checkArgs(l.begin(0, '5-0'))).toEqual(['check', '5-0', 1000, '', '']);
  });

  it("an unknown base is taken at the first exact answer, and 'unknown' asks again", () => {
    const l = new LossLedger({ base: undefined, cursor: '5-0' });
    expect(l.exactAt).toBe('');
    l.onRead(10);
    expect(res(l.apply(['unknown'], l.begin(0, '6-0')))).toBe('retry');
    expect(l.dirty).toBe(true);
    l.onRead(5);
    expect(res(l.apply(ok(100, 20), l.begin(1000, '7-0')))).toBe(0);
    // Two entries ahead deleted later.
    expect(res(l.apply(ok(100, 18), l.begin(2000, '7-0')))).toBe(2);
  });

  it('a key that is gone counts from 0 when it is created again, and says so once', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0' });
    l.onRead(10);
    expect(res(l.apply(ok(10, 0), l.begin(0, '1-9')))).toBe(0);
    expect(res(l.apply(['nokey'], l.begin(1000, '1-9')))).toBe('nokey');
    expect(res(l.apply(['nokey'], l.begin(2000, '1-9')))).toBe(0);
    // Created again: 5 added, 2 read, 1 ahead: 2 lost.
    l.onRead(2);
    expect(res(l.apply(ok(5, 1), l.begin(3000, '9-2')))).toBe(2);
  });

  it('fewer lost than already counted (a key created again between checks) says so and goes on from the new key', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0' });
    l.onRead(10);
    expect(res(l.apply(ok(15, 0), l.begin(0, '1-9')))).toBe(5);
    l.onRead(3);
    expect(l.apply(ok(3, 0), l.begin(1000, '2-2'))).toEqual({ lost: 0, say: 'recreated' });
    expect(l.lost).toBe(5);
    l.onRead(1);
    expect(res(l.apply(ok(5, 0), l.begin(2000, '2-4')))).toBe(1);
  });

  it('a key created again, or gone back in time, counts what was ahead at the last check and not read since', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 50, maxDeleted: '0-0' });
    l.onRead(5);
    expect(l.apply(ok(50, 45), l.begin(0, '1-5'))).toEqual({ lost: 0 });
    // Held back: no reads, a check at most once a second.
    expect(l.idleDue(500)).toBe(false);
    expect(l.idleDue(1000)).toBe(true);
    // Created again with 2 entries, both read: 45 - 2 unread for sure.
    l.onRead(2);
    expect(l.idleDue(5000)).toBe(false); // reads: the timer's check of them comes first
    expect(l.apply(ok(2, 0), l.begin(1000, '9-1'))).toEqual({ lost: 43, say: 'recreated' });
    // Counting goes on from the new key.
    l.onRead(1);
    expect(l.apply(ok(4, 0), l.begin(2000, '9-3'))).toEqual({ lost: 1 });
    expect(l.lost).toBe(44);
  });

  it('a first entry newer than the last ID generated at the last answer, with fewer deleted than there were, is a key created again', () => {
    // 10 entries ahead ('1-1'..'1-10'), none read.
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 10, maxDeleted: '0-0', lastGen: '1-10' });
    // Created again with 20 entries (as many counters as before, or more); 5 of them read.
    l.onRead(5, (i) => `9-${i}`);
    expect(l.apply(['same', 0, 20, '0-0', '9-0', '9-19'], l.begin(0, '9-4'))).toEqual({ lost: 10, say: 'recreated' });
    // The same key with its 10 entries trimmed (deleted count +10) is not.
    const m = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 10, maxDeleted: '0-0', lastGen: '1-10' });
    m.onRead(5, (i) => `9-${i}`);
    expect(m.apply(['ok', 20, 5, 10, '1-10', '9-5', '9-19'], m.begin(0, '9-4'))).toEqual({ lost: 10 });
  });

  it('only reads up to the last ID generated at the last answer can be entries that were ahead then', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 3, maxDeleted: '0-0', lastGen: '1-3' });
    // '1-1'..'1-2' of the old key, then '9-0'..'9-2' of a new one.
    l.onRead(5, (i) => (i < 2 ? `1-${i + 1}` : `9-${i - 2}`));
    expect(l.apply(['ok', 2, 0, 0, '0-0', '9-0', '9-2'], l.begin(0, '9-2'))).toEqual({ lost: 1, say: 'recreated' });
  });

  it('max-deleted-entry-id going back is a key created again too', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 10, maxDeleted: '0-0' });
    expect(l.apply(['ok', 20, 15, 5, '5-0'], l.begin(0, '0-0'))).toEqual({ lost: 5 });
    expect(l.apply(['ok', 20, 10, 0, '0-0'], l.begin(1000, '0-0'))).toEqual({ lost: 15, say: 'recreated' });
  });

  it('a key missing at the start and still missing has nothing to tell', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', missing: true, deleted: 0, added: 0, maxDeleted: '0-0' });
    expect(l.apply(['nokey'], l.begin(0, '0-0'))).toEqual({ lost: 0 });
    expect(l.apply(['ok', 3, 3, 0, '0-0'], l.begin(1000, '0-0'))).toEqual({ lost: 0 });
    expect(l.apply(['nokey'], l.begin(2000, '0-0'))).toEqual({ lost: 3, say: 'nokey' });
  });

  it('a key that is gone counts what was ahead at the last check and not read since, once', () => {
    const l = new LossLedger({ base: 0, cursor: '0-0', deleted: 0, added: 50, maxDeleted: '0-0' });
    l.onRead(5);
    expect(l.apply(['nokey'], l.begin(0, '1-5'))).toEqual({ lost: 45, say: 'nokey' });
    expect(l.apply(['nokey'], l.begin(1000, '1-5'))).toEqual({ lost: 0 });
    l.onRead(2);
    expect(l.apply(ok(2, 0), l.begin(2000, '9-1'))).toEqual({ lost: 0 });
    expect(l.lost).toBe(45);
  });

  it('an unknown start (a Date ahead of the clock): entries up to it added meanwhile are the base, not lost', () => {
    const l = new LossLedger({ base: undefined, cursor: '9-0', deleted: 0, added: 1, maxDeleted: '0-0' });
    // 20 added before the start time, then 5 after it, read.
    l.onRead(5);
    expect(l.apply(['ok', 26, 0, 0, '0-0'], l.begin(0, '10-4'))).toEqual({ lost: 0 });
    // Deleted after the start before the first count: maybe lost, said so.
    const m = new LossLedger({ base: undefined, cursor: '9-0', deleted: 0, added: 1, maxDeleted: '0-0' });
    m.onRead(5);
    expect(m.apply(['ok', 26, 0, 2, '10-1'], m.begin(0, '10-4'))).toEqual({ lost: 0, say: 'uncertain' });
    // Deleted before the start only: exact.
    const n = new LossLedger({ base: undefined, cursor: '9-0', deleted: 0, added: 1, maxDeleted: '0-0' });
    n.onRead(5);
    expect(n.apply(['ok', 26, 0, 2, '8-1'], n.begin(0, '10-4'))).toEqual({ lost: 0 });
  });

  it("Redis before 7.0 ('unsupported') turns checks off", () => {
    const l = new LossLedger({ base: 0, cursor: '0-0' });
    l.onRead(1);
    expect(res(l.apply(['unsupported'], l.begin(0, '1-0')))).toBe('unsupported');
    l.onRead(1);
    expect(l.due(10_000)).toBe(false);
  });
});
