/**
 * Outside review AN (defect 1; line numbers as of commit 593ef9d): the `:positions` hash (lossScripts.ts checkTrimmed, commit 6365cdd) outlives a stream
 * that expired (its TTL follows the stream's with a 60 s floor, REMOVAL_KEYS_FLOOR_MS) and is never
 * dropped for a stream deleted outside the library. A kept `0-0 <n>` (a group created at the start
 * of a stream whose entries were all trimmed: SET_ENTRIES_READ gives it entries-read = entries-added)
 * then matches the `0-0` of the group created in the stream's NEXT life, whose counter (0) is below
 * it: the check takes it for an AOF-stale counter and sets it to n (lossScripts.ts:121-126). The
 * new group's entries-read is n too high from then on, and a later trim counts n fewer losses than
 * went: they are lost without a word.
 * Failed before the fix: 2 of 2 (both clients): 2 of 5 trimmed events counted, no warning.
 * Fixed: a kept position at 0-0 or above the entries this life of the stream added is dropped, not trusted (lossScripts.ts).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { positionsKey } from '../packages/pulse-streaming/src/internal/keys.js';
import { mapRecord } from '../packages/pulse-streaming/src/internal/replies.js';
import { CLIENT_KINDS, collect, connect, recordingLogger, sharedUrl, uniqueName, waitFor, within } from './support/clients.js';

const opts = { blockMs: 100, ackGracePeriodMs: 1000 };

/** entries-read of group `g` as XINFO GROUPS says. */
async function entriesRead(c: { cmd(...a: (string | number)[]): Promise<unknown> }, key: string): Promise<unknown> {
  const groups = (await c.cmd('XINFO', 'GROUPS', key)) as unknown[];
  for (const g of groups) {
    const f = mapRecord(g);
    if (String(f.name) === 'g') return f['entries-read'];
  }
  return undefined;
}

describe.concurrent.each(CLIENT_KINDS)('kept positions across a stream expiry (%s)', (kind) => {
  it('a sink of the stream created again after it expired counts every event trimmed before it read them', async (ctx: TestContext) => {
    const c = await connect(kind, sharedUrl());
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const name = uniqueName('revANlife');
    // First life: a stream with a 1 s TTL; its 3 events were trimmed away (an operator, or maxLen 0)
    // before sink g was created on it.
    const old = new Stream(name, c.redis, { logger: logger as Logger, ttlMs: 1000 });
    for (let i = 0; i < 3; i++) await old.add('e', `old${i}`);
    await c.cmd('XTRIM', old.key, 'MAXLEN', '0');
    const first = await old.newSink('g', opts);
    const got0: SinkEvent[] = [];
    void collect(first.subscribe(), got0, true);
    const pkey = positionsKey(name);
    await waitFor(async () => (await c.cmd('HGET', pkey, 'g')) !== null, { timeout: 8000, what: 'a check kept g' });
    await within(first.close(), 10_000, 'close');
    // The stream expires with nothing running.
    await waitFor(async () => Number(await c.cmd('EXISTS', old.key)) === 0, { timeout: 8000, what: 'stream expired' });

    // Second life (a producer without TTL), a new instance of sink g.
    const s = new Stream(name, c.redis, { logger: logger as Logger, maxLen: 0 });
    ctx.onTestFinished(() => s.destroy());
    // The consumer service starts first (the default startAt, on a stream not there yet), then the producer adds.
    const got: SinkEvent[] = [];
    const second = await s.newSink('g', opts);
    void collect(second.subscribe(), got, true);
    await waitFor(async () => String(await c.cmd('HGET', pkey, 'g')).startsWith('0-0 '), {
      timeout: 8000,
      what: 'a check of the new group',
    });
    await s.add('e', 'n0');
    await waitFor(() => got.length === 1, { timeout: 8000, what: 'n0 delivered' });
    await within(second.close(), 10_000, 'close');
    // The group of this life has read 1 entry of 1 added.
    ctx.expect.soft(Number(await entriesRead(c, s.key)), "the new group's entries-read").toBe(1);

    // 10 more it does not read, trimmed to the last 5: 5 lost.
    for (let i = 1; i <= 10; i++) await s.add('e', `n${i}`);
    await c.cmd('XTRIM', s.key, 'MAXLEN', '5');
    const got3: SinkEvent[] = [];
    const third = await s.newSink('g', opts);
    ctx.onTestFinished(() => within(third.close(), 10_000, 'close'));
    void collect(third.subscribe(), got3, true);
    await waitFor(() => got3.length === 5 && third.counters.lost > 0, { timeout: 8000, what: 'n6..n10 delivered, loss counted' });
    const unknown = lines.some((l) => l.level === 'warn' && /how many is unknown/.test(String(l.msg)));
    expect({ lost: third.counters.lost, unknown }, 'n1..n5 were trimmed unread').toEqual({ lost: 5, unknown: false });
  }, 30_000);
});
