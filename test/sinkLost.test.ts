/**
 * Events deleted or trimmed before a sink delivered them are reported as lost
 * (SEMANTICS.md section 4), never delivered empty; both clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger, SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  collect,
  connect,
  recordingLogger,
  stays,
  type TestClient,
  take,
  uniqueName,
  waitFor,
} from './support/clients.js';
import { BLOCK, GRACE, sinkSuite, WAIT } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink lost events (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { pendingEntries, xlen, fixture } = sinkSuite(() => c);

  it('entries deleted or trimmed while pending are reported as lost, not delivered empty', async (ctx) => {
    const f = fixture(ctx);
    const { logger, lines } = recordingLogger();
    const s = f.stream({ logger: logger as Logger });
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('event', `p${i}`)) as string);
    const got = await take(sub, 5);
    expect(got.map((e) => e.id)).toEqual(ids);
    await s.remove(ids[0] as string); // XDEL
    await c.cmd('XTRIM', s.key, 'MAXLEN', '1'); // exact trim: only ids[4] stays
    const later: SinkEvent[] = [];
    const run = collect(sub, later, false);
    await waitFor(() => sink.counters.lost >= 4, { ...WAIT, what: '4 lost events' });
    expect(sink.counters.lost).toBe(4);
    const warned = lines.filter((l) => l.level === 'warn' && ids.slice(0, 4).some((id) => JSON.stringify(l.obj).includes(id)));
    expect(warned.length).toBeGreaterThan(0);
    // The surviving entry is redelivered; the lost ones never are, not even as empty events.
    await waitFor(() => later.length > 0, WAIT);
    expect(later.every((e) => e.id === ids[4] && e.text() === 'p4' && e.eventName === 'event')).toBe(true);
    await sink.ack(...later);
    expect(await pendingEntries(s.key, 'sink')).toEqual([]);
    await stays(() => later.every((e) => e.id === ids[4]), 2 * GRACE, 'no lost event delivered');
    await sink.close();
    await run;
  });

  it('events trimmed by maxLen before a new group read anything are reported as lost (SEMANTICS 4)', async (ctx) => {
    const f = fixture(ctx);
    const { logger, lines } = recordingLogger();
    const s = f.stream({ logger: logger as Logger, maxLen: 10 });
    const sink = await f.sink(s); // group exists; reading starts on subscribe
    const added: string[] = [];
    for (let i = 0; i < 300; i++) added.push((await s.add('event', `p${i}`)) as string);
    const remaining = await xlen(s.key);
    expect(remaining).toBeLessThan(300);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, true);
    await waitFor(() => got.length >= remaining, WAIT);
    const trimmed = 300 - remaining;
    // Every added event ends acked or reported lost: nothing silently dropped.
    await waitFor(() => sink.counters.lost >= trimmed, { ...WAIT, what: `${trimmed} trimmed events reported lost` });
    expect(sink.counters.lost).toBe(trimmed);
    expect(lines.some((l) => l.level === 'warn')).toBe(true);
    await sink.close();
    await run;
  });

  it('events trimmed by maxLen while no subscriber reads are reported as lost after a resumed read', async (ctx) => {
    const f = fixture(ctx);
    const { logger, lines } = recordingLogger();
    const s = f.stream({ logger: logger as Logger, maxLen: 10 });
    const sink = await f.sink(s);
    const sub = sink.subscribe();
    await s.add('event', 'first');
    const [first] = await take(sub, 1);
    await first?.ack();
    sink.unsubscribe(sub); // no subscriber: the sink stops reading
    for (let i = 0; i < 300; i++) await s.add('event', `p${i}`);
    const remaining = await xlen(s.key);
    expect(remaining).toBeLessThan(300);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, true);
    await waitFor(() => got.length >= remaining, WAIT);
    await waitFor(() => sink.counters.lost >= 300 - remaining, { ...WAIT, what: 'trimmed events reported lost' });
    expect(sink.counters.lost).toBe(300 - remaining);
    expect(got.map((e) => e.text())).toEqual(Array.from({ length: remaining }, (_, i) => `p${300 - remaining + i}`));
    expect(lines.some((l) => l.level === 'warn')).toBe(true);
    await sink.close();
    await run;
  });

  /** Resolves once the sink's read connection is blocked in XREADGROUP (it read everything and waits). */
  async function blockedInRead(sinkName: string): Promise<void> {
    await waitFor(
      async () =>
        String(await c.cmd('CLIENT', 'LIST'))
          .split('\n')
          .some((l) => l.includes(`name=pulse:sink:${sinkName}:read `) && / flags=b /.test(l) && l.includes('cmd=xreadgroup')),
      { ...WAIT, what: 'the sink blocked in XREADGROUP' },
    );
  }

  // One command adds many entries and trims some before Redis serves the
  // blocked read: XREADGROUP moves past the trimmed ones and counts only the
  // survivors. Each writer below is such a command (the library's adds of one
  // tick are one script call per 256 events).
  const writers: Array<[string, (s: Stream, n: number, maxLen: number) => Promise<void>]> = [
    [
      'a script of XADD MAXLEN =',
      async (s, n, maxLen) => {
        const body = `for i = 1, ${n} do redis.call('XADD', KEYS[1], 'MAXLEN', '=', '${maxLen}', '*', 'n', 'event', 'p', 'p' .. (i - 1)) end`;
        await c.cmd('EVAL', body, 1, s.key);
      },
    ],
    [
      "the library's adds of one tick, maxLen",
      async (s, n) => {
        await Promise.all(Array.from({ length: n }, (_, i) => s.add('event', `p${i}`)));
      },
    ],
  ];
  // The last case leaves more entries after the read than the check counts
  // at once: it reports the loss once the sink has caught up.
  const shapes: Array<{ n: number; maxLen: number; maxPolled: number }> = [
    { n: 250, maxLen: 10, maxPolled: 1000 },
    { n: 250, maxLen: 10, maxPolled: 10 },
    { n: 1000, maxLen: 400, maxPolled: 10 },
  ];
  for (const [writer, write] of writers) {
    for (const { n, maxLen, maxPolled } of shapes) {
      it(`a blocked sink served after ${writer} ${maxLen} (${n} events, maxPolled ${maxPolled}) reports what its read jumped over as lost`, async (ctx) => {
        const f = fixture(ctx);
        const { logger, lines } = recordingLogger();
        const s = f.stream({ logger: logger as Logger, maxLen });
        const name = uniqueName('jump');
        // A grace period no stall of a loaded machine reaches: redelivery is not what this counts.
        const sink = await f.sink(s, { maxPolled, ackGracePeriodMs: 10_000 }, name);
        const got: SinkEvent[] = [];
        const run = collect(sink.subscribe(), got, true);
        await s.add('event', 'first');
        await waitFor(() => got.length === 1, WAIT);
        await blockedInRead(name);
        await write(s, n, maxLen);
        const kept = await xlen(s.key);
        expect(kept).toBeLessThan(n);
        // Every added event ends handled or reported lost, never both, never neither.
        await waitFor(() => got.length - 1 + sink.counters.lost >= n, { ...WAIT, what: 'all events handled or lost' });
        const handled = got.slice(1).map((e) => Number(e.text().slice(1)));
        expect(handled.length + sink.counters.lost).toBe(n);
        // In order, each once, and every survivor among them (the sink may
        // also have read some before a later script call trimmed them).
        expect(handled.every((v, i) => i === 0 || v > (handled[i - 1] as number))).toBe(true);
        expect(handled.slice(-kept)).toEqual(Array.from({ length: kept }, (_, i) => n - kept + i));
        expect(lines.some((l) => l.level === 'warn' && l.msg?.includes('trimmed before this sink read them'))).toBe(true);
        const lost = sink.counters.lost;
        await stays(() => sink.counters.lost === lost && got.length === handled.length + 1, 3 * BLOCK, 'nothing counted twice');
        await sink.close();
        await run;
      });
    }
  }

  it('close() counts what its last blocking read jumped over, before the next keep-alive would', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream({ maxLen: 10 });
    const name = uniqueName('jump');
    // Keep-alive (and its trim check) every 5 s: close() comes first.
    const sink = await f.sink(s, { ackGracePeriodMs: 60_000 }, name);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, true);
    await s.add('event', 'first');
    await waitFor(() => got.length === 1, WAIT);
    await blockedInRead(name);
    await c.cmd(
      'EVAL',
      `for i = 1, 100 do redis.call('XADD', KEYS[1], 'MAXLEN', '=', '10', '*', 'n', 'event', 'p', 'p' .. (i - 1)) end`,
      1,
      s.key,
    );
    await waitFor(() => got.length === 11, { ...WAIT, what: 'the 10 survivors handled' });
    expect(sink.counters.lost).toBe(0);
    await sink.close();
    await run;
    expect(sink.counters.lost).toBe(90);
  });
});
