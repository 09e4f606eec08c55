/**
 * Outside review AG (defect 2; line numbers as of commit 41e36ff; commit a80e17f: sinks read many streams in turn).
 *
 * A busy stream is starved by other busy streams of the same sink: while
 * the backlog drains, read-ahead asks `SinkReads.nextRead(group, ahead)` for
 * a read to send ahead each time a subscriber takes events, and nextRead
 * picks its streams (`this.#rotation.pick(...)`, internal/sinkRead.ts:126),
 * which moves the rotation's cursors, BEFORE it decides not to send that
 * read (line 130, and line 141: `most > ahead`, the usual case while the
 * buffer holds events). Each refused read-ahead skips a whole turn of
 * streams. The refusals come in a steady rhythm (typically 2 or 3 per read
 * actually sent), so the reads sent land on the same subset of the streams
 * again and again: with 12 busy streams and 8 per read (maxPolled 100) the
 * same 8 are read for hundreds of reads in a row and the other 4 get
 * nothing until those 8 run dry. README ("A sink or reader over several
 * streams"): "a backlog on one does not hold back another ... reads them in
 * turn while they hold a backlog".
 * Failed before the fix: both clients, every run (two busy streams went 10,400+ events unread).
 * Fixed: the rotation moves only for a read that is sent (a refused read ahead is decided before it plans).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, connect, type TestClient } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { fill, sinkFixture } from './support/sinkFixture.js';

const BOUND = { maxPolled: 100, bufferSize: 100 };
const BUSY = 8;
const QUIET = 100;
const BACKLOG = 2000;
/** Ten reads' worth: with 12 streams and 8 per read in turn, each stream is read every other read or so. */
const MOST_GAP = 10 * BOUND.maxPolled;

describe.each(CLIENT_KINDS)('busy streams read in turn (%s)', (kind) => {
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

  it('no stream with a backlog goes unread while the others’ backlogs drain (8 busy and 100 quiet streams, 8 per read)', async (ctx) => {
    const f = sinkFixture(ctx, c, 'revAGb');
    const busy = Array.from({ length: BUSY }, () => f.stream());
    const quiet = Array.from({ length: QUIET }, () => f.stream());
    for (const s of busy) await fill(s, BACKLOG);
    // The quiet streams have one event each: read once early on, they come back short (drained).
    for (const s of quiet) await s.add('bulk', 'b0');
    const sink = await f.sinkOver([...busy, ...quiet], BOUND);
    const index = new Map(busy.map((s, i) => [s.name, i]));
    const order: number[] = [];
    const seen = new Map<string, number[]>();
    const ac = new AbortController();
    let handled = 0;
    await sink.process(
      (ev) => {
        if (++handled === BUSY * BACKLOG + QUIET) ac.abort();
        if (!index.has(ev.streamName)) return;
        order.push(index.get(ev.streamName) as number);
        const got = seen.get(ev.streamName) ?? [];
        got.push(Number(ev.payload.toString().slice(1)));
        seen.set(ev.streamName, got);
      },
      { signal: ac.signal },
    );
    // Every event once, in order per stream (holds).
    for (const s of busy) expect(seen.get(s.name)).toEqual(Array.from({ length: BACKLOG }, (_, i) => i));
    // Up to the first stream to run dry, every stream still had a backlog: the longest run of events
    // handled without one of a given stream.
    const done = new Array<number>(BUSY).fill(0);
    let end = order.length;
    for (let i = 0; i < order.length; i++) {
      const s = order[i] as number;
      done[s] = (done[s] as number) + 1;
      if (done[s] === BACKLOG) {
        end = i;
        break;
      }
    }
    const last = new Array<number>(BUSY).fill(-1);
    const gaps = new Array<number>(BUSY).fill(0);
    for (let i = 0; i < end; i++) {
      const s = order[i] as number;
      gaps[s] = Math.max(gaps[s] as number, i - (last[s] as number) - 1);
      last[s] = i;
    }
    for (let s = 0; s < BUSY; s++) gaps[s] = Math.max(gaps[s] as number, end - (last[s] as number) - 1);
    console.log(`${kind}: first stream dry after ${end} events; longest gap per stream: ${gaps.join(' ')}`);
    // Fails: some streams get nothing for thousands of events (the same 8 of 12 read every time).
    expect(Math.max(...gaps), `longest run of events without one of a busy stream: ${gaps.join(' ')}`).toBeLessThanOrEqual(
      MOST_GAP,
    );
  }, 60_000);
});
