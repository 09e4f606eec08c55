/**
 * Outside review AG (defect 4; line numbers as of commit 41e36ff; one sink over many streams, idle and blocking reads).
 *
 * README, Memory: "a sink or reader holds at most `bufferSize + maxPolled`
 * events per subscription ... and one read up to `maxPolled` MB" (lower both
 * for large payloads); the only noAck exception named is "what a claim and a
 * read landing together bring past the bound".
 *
 * An idle sink's blocking read waits on every stream with COUNT
 * `max(1, floor(maxPolled / streams))` (internal/sinkRead.ts:136-139,
 * `countPerStream(..., 1)` and `Math.max(1, floor(room / streams.length))`):
 * over more streams than `maxPolled` it asks 1 of EACH, so a burst that
 * touches every stream at once (a fan-out publish, a producer's batch, a
 * restart of the producers) comes back in ONE read of `streams` events. A
 * noAck sink acked them all as read (NOACK) and cannot give any back, so it
 * buffers all of them: here 200 events in a subscription bounded at 20 (at
 * 1 MB per event: 200 MB where the README promises 20). The rotated checked
 * reads of a80e17f keep within the bound; the blocking read does not.
 *
 * (An acking sink over the same burst stays within its bound: it gives back
 * what passes it and takes it back at once. Checked, holds.)
 * Not fixed: a noAck sink cannot give back what it read (acked as read), so it is now a documented
 * exception of the bound (README, Memory: up to one event per stream); this test checks that.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, readBlocked, type TestClient, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { sinkFixture } from './support/sinkFixture.js';

const N = 200;
const BOUND = { maxPolled: 10, bufferSize: 10 };

describe.each(CLIENT_KINDS)('noAck sink over many streams, a burst on all of them (%s)', (kind) => {
  let server: RedisServer;
  let c: TestClient;
  beforeAll(async () => {
    server = await RedisServer.start();
    c = await connect(kind, server.url);
  });
  afterAll(async () => {
    await c?.close();
    await server?.stop();
  });

  it('a subscription buffers at most one event per stream past the bound, and every event comes (one event added to each of 200 streams at once)', async (ctx) => {
    const f = sinkFixture(ctx, c, 'revAGnb');
    const streams = Array.from({ length: N }, () => f.stream());
    // Each stream exists (one event, before the sink's start): the burst below copies its entry's fields.
    for (const s of streams) await s.add('seed', 'x');
    const sink = await f.sinkOver(streams, { ...BOUND, noAck: true, startAt: 'newest', blockMs: 5000 });
    const sub = sink.subscribe();
    let most = 0;
    const timer = setInterval(() => (most = Math.max(most, sub.size)), 1);
    ctx.onTestFinished(() => clearInterval(timer));
    // Idle: its blocking read over all 200 streams is out.
    await readBlocked(c);
    const entry = (
      (await c.cmd('XRANGE', (streams[0] as Stream).key, '-', '+', 'COUNT', '1')) as [string, (string | Buffer)[]][]
    )[0];
    const fields = (entry?.[1] ?? []).map(String);
    // One event on every stream at once (a script: Redis serves the blocked read after it).
    await c.cmd(
      'EVAL',
      "for _, k in ipairs(KEYS) do redis.call('XADD', k, '*', unpack(ARGV)) end return 1",
      N,
      ...streams.map((s) => s.key),
      ...fields,
    );
    await waitFor(() => sub.size > 0, { timeout: 5000, what: 'the burst read' });
    most = Math.max(most, sub.size);
    let got = 0;
    const it = sub[Symbol.asyncIterator]();
    while (got < N) {
      most = Math.max(most, sub.size);
      const n = await it.next();
      if (n.done) break;
      got++;
    }
    expect(got).toBe(N);
    // The documented exception (README, Memory): up to one event per stream, never more.
    expect(most, 'most buffered at once').toBeLessThanOrEqual(N);
    expect(most).toBeGreaterThan(0);
  }, 30_000);
});
