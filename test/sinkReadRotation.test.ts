/**
 * A sink over more streams than one read serves well reads them in turn
 * (internal/readRotation.ts): each checked read carries the trim checks of
 * at most `rotationSize(maxPolled)` streams, where it carried every stream's
 * for one or two entries of each (a sink over 1000 streams with a backlog ran
 * at 0.14-0.24 x a raw XREADGROUP loop: issue 19's scaling curve). It still
 * delivers every event once and in order per stream, counts what was trimmed
 * before a stream's turn, and reads a quiet stream's new event while the
 * others hold a backlog. What reaches Redis is seen with MONITOR on a
 * private server.
 * Failed before the change: the first checked read carried all 60 streams' checks (180 keys).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stream } from '../packages/pulse-streaming/src/index.js';
import { rotationSize } from '../packages/pulse-streaming/src/internal/readRotation.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { fill, sinkFixture } from './support/sinkFixture.js';

const STREAMS = 60;
const PER_STREAM = 50;
const BOUND = { maxPolled: 100, bufferSize: 100 };

describe.each(CLIENT_KINDS)('a sink over many streams reads them in turn (%s)', (kind) => {
  let server: RedisServer;
  let c: TestClient;
  let redis: Redis;
  let mon: Redis;
  /** Every trim check (the read's EVAL of checkTrimmed) seen: the stream keys it checked. */
  const checks: string[][] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port);
    // A client already ready, as in auditDefaults: MONITOR must not race another connection's ready check.
    await redis.ping();
    mon = await redis.monitor();
    mon.on('monitor', (_t: unknown, args: unknown[]) => {
      const a = args.map(String);
      if (a[0]?.toUpperCase() !== 'EVAL' || !a[1]?.includes("out[i] = {'nogroup'}")) return;
      const n = Number(a[2]);
      checks.push(a.slice(3, 3 + n).filter((_, i) => i % 4 === 0));
    });
    c = await connect(kind, server.url);
  });
  afterAll(async () => {
    await c?.close();
    mon?.disconnect();
    redis?.disconnect();
    await server?.stop();
  });

  it('every event once, in order per stream; each check covers a share of the streams; a trimmed stream’s loss counted', async (ctx) => {
    const f = sinkFixture(ctx, c, 'rot');
    const streams = Array.from({ length: STREAMS }, () => f.stream());
    for (const s of streams) await fill(s, PER_STREAM, 'e', '');
    const sink = await f.sinkOver(streams, BOUND);
    const last = streams[STREAMS - 1] as Stream;
    // Trimmed before its turn came: 40 of its 50 events go unread.
    await c.cmd('XTRIM', last.key, 'MAXLEN', '=', '10');
    const keys = new Set(streams.map((s) => s.key));
    const seen = new Map<string, number[]>();
    let handled = 0;
    const total = STREAMS * PER_STREAM - 40;
    const ac = new AbortController();
    await sink.process(
      (ev) => {
        const got = seen.get(ev.streamName) ?? [];
        got.push(Number(ev.payload.toString()));
        seen.set(ev.streamName, got);
        if (++handled === total) ac.abort();
      },
      { signal: ac.signal },
    );
    for (const s of streams) {
      const want = Array.from({ length: PER_STREAM }, (_, i) => i).slice(s === last ? 40 : 0);
      expect(seen.get(s.name), s.name).toEqual(want);
    }
    await waitFor(() => sink.counters.lost === 40, { what: '40 lost on the trimmed stream' });
    const ours = checks.filter((k) => k.some((key) => keys.has(key)));
    expect(ours.length).toBeGreaterThan(0);
    const most = Math.max(...ours.map((k) => k.length));
    expect(most).toBeLessThanOrEqual(rotationSize(BOUND.maxPolled));
    // Every stream was checked by some read (the trimmed one's loss above came from one).
    expect(new Set(ours.flat()).size).toBe(STREAMS);
  }, 60_000);

  it('a quiet stream’s new event is read while the others hold a backlog', async (ctx) => {
    const f = sinkFixture(ctx, c, 'rotq');
    const busy = Array.from({ length: 40 }, () => f.stream());
    for (const s of busy) await fill(s, 200, 'e', '');
    const quiet = f.stream();
    const sink = await f.sinkOver([...busy, quiet], BOUND);
    let handled = 0;
    let addedAt = -1;
    let quietAt = -1;
    const ac = new AbortController();
    const run = sink.process(
      async (ev) => {
        if (ev.streamName === quiet.name) quietAt = handled;
        handled++;
        if (handled === 300) {
          addedAt = handled;
          await quiet.add('one', 'x');
        }
      },
      { signal: ac.signal },
    );
    await waitFor(() => quietAt >= 0, { timeout: 30_000, what: 'the quiet stream’s event' });
    ac.abort();
    await run;
    // Within a buffer, a read in flight, one read ahead and one under way at the add (streamsFairness).
    expect(quietAt - addedAt).toBeLessThanOrEqual(BOUND.bufferSize + 3 * BOUND.maxPolled);
    expect(handled).toBeLessThan(40 * 200);
  }, 60_000);
});
