/**
 * A sink or reader over several streams: a backlog on one does not starve
 * another. An event added to a quiet stream comes after at most about a
 * buffer and a read of the busy stream's backlog (README, "A sink or reader
 * over several streams"), not after the whole backlog (outside review D).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { fill, sinkFixture } from './support/sinkFixture.js';

const BACKLOG = 3000;
/** Small reads and buffers: starving would show as the quiet event coming after ~2800 others. */
const BOUND = { maxPolled: 50, bufferSize: 50 };
/** A buffer, a read in flight and one read ahead, with room for a read that was under way at the add. */
const MOST_BEFORE = BOUND.bufferSize + 3 * BOUND.maxPolled;

describe.concurrent.each(CLIENT_KINDS)('one stream’s backlog does not starve another (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('sink: the quiet stream’s event is handled within a buffer of the busy one’s backlog', async (ctx) => {
    const f = sinkFixture(ctx, c, 'fairsink');
    const busy = f.stream();
    const quiet = f.stream();
    await fill(busy, BACKLOG);
    const sink = await f.sink(busy, BOUND);
    await sink.addStream(quiet, { startAt: 'oldest' });
    let handled = 0;
    let addedAt = -1;
    let quietAt = -1;
    const ac = new AbortController();
    const run = sink.process(
      async (ev) => {
        if (ev.streamName === quiet.name) quietAt = handled;
        handled++;
        if (handled === 200) addedAt = handled; // the add below is issued from here, while the backlog drains
        if (handled === 200) await quiet.add('one', 'x');
      },
      { signal: ac.signal },
    );
    await waitFor(() => quietAt >= 0, { timeout: 20_000, what: 'the quiet stream’s event' });
    ac.abort();
    await run;
    expect(quietAt - addedAt).toBeLessThanOrEqual(MOST_BEFORE);
    expect(handled).toBeLessThan(BACKLOG); // the backlog was still there when it came
  });

  it('reader: the quiet stream’s event is delivered within a buffer of the busy one’s backlog', async (ctx) => {
    const f = sinkFixture(ctx, c, 'fairreader');
    const busy = f.stream();
    const quiet = f.stream();
    await fill(busy, BACKLOG);
    const reader = await busy.newReader({ startAt: 'oldest', blockMs: 100, ...BOUND });
    ctx.onTestFinished(() => reader.close());
    await reader.addStream(quiet, { startAt: 'oldest' });
    let seen = 0;
    let addedAt = -1;
    for await (const ev of reader) {
      if (ev.streamName === quiet.name) break;
      seen++;
      if (seen === 200) {
        addedAt = seen;
        await quiet.add('one', 'x');
      }
      // Taken one by one, as a handler would: the buffer is what lets the quiet event overtake.
      await new Promise<void>((r) => setImmediate(r));
    }
    expect(addedAt).toBe(200);
    expect(seen - addedAt).toBeLessThanOrEqual(MOST_BEFORE);
    expect(seen).toBeLessThan(BACKLOG);
  });
});
