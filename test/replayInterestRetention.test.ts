/**
 * Outside review AD (defect 1; line numbers as of commit 4b06d2a).
 * replayDeadLetters into a stream with `retention: 'interest'`.
 *
 * API.md "Retention": with 'interest', "trimming never removes an entry that a
 * sink of the stream has not yet acked (or not yet read); maxLen applies only to
 * entries every sink is done with". A replay is an add of the stream, so under
 * 'interest' it must not remove entries a sink has not read yet. The replay
 * script (replayScripts.ts XADD_HEAD) wrote `XADD key MAXLEN ~ maxLen`
 * whatever the stream's retention: 200 of 300 unread events went with one
 * replayed letter (reported lost by the sink).
 *
 * Failed before the fix: 5 of 5 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: under 'interest' a replay does not trim (deadLetters.ts `replayMaxLen`); the stream's next adds do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)("replayDeadLetters under retention 'interest' (%s)", (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it('a replay never trims events a sink has not read yet', async () => {
    const s = new Stream(uniqueName('replayInterest'), c.redis, { maxLen: 10, retention: 'interest' });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 2000 });
    try {
      // 300 events the sink has not read: 'interest' keeps them all (plain adds do).
      const ids = (await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `v${i}`)))) as string[];
      expect(Number(await c.cmd('XLEN', s.key))).toBe(300);
      // One dead letter of this stream, in the library's wire form (API.md: n, p, source_*...).
      await c.cmd(
        'XADD',
        `pulse:stream:${s.name}:dead`,
        '*',
        ...['n', 'e', 'p', 'replayed', 'source_stream', s.name, 'source_sink', 'g', 'source_id', '1-0'],
        ...['deliveries', '3', 'reason', 'max deliveries reached'],
      );
      const replayed = await replayDeadLetters(s);
      expect(replayed).toHaveLength(1);
      // Expected: all 300 unread events still stored, plus the replayed one.
      const stored = new Set(((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown]>).map(([id]) => String(id)));
      const trimmed = ids.filter((id) => !stored.has(id));
      expect(trimmed.length, 'unread events trimmed by the replay').toBe(0);
      // And the sink gets every one of them, none reported lost.
      const got = new Set<string>();
      const ac = new AbortController();
      const done = sink.process(
        (ev: SinkEvent) => {
          got.add(ev.text());
        },
        { signal: ac.signal },
      );
      await waitFor(() => got.size >= 301 || sink.counters.lost > 0, { timeout: 10_000, what: 'the sink to get or lose them' });
      ac.abort();
      await done;
      expect(sink.counters.lost).toBe(0);
      expect(got.size).toBe(301);
    } finally {
      await sink.close();
      await s.destroy().catch(() => {});
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    }
  });
});
