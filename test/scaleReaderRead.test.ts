/**
 * A reader over several streams (issue 19): XREAD's COUNT is per stream, so
 * one read split `maxPolled` among the streams instead of bringing up to
 * `maxPolled` from each, and every event of every stream is still delivered
 * once, in order, with nothing counted lost.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type Reader, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, stays, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const WAIT = { timeout: 10_000 };

async function addMany(s: Stream, n: number): Promise<string[]> {
  return (await Promise.all(Array.from({ length: n }, (_, i) => s.add('e', `${s.name}:${i}`)))) as string[];
}

describe.concurrent.each(CLIENT_KINDS)('reader over several streams (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  function fixture(ctx: TestContext) {
    const streams: Stream[] = [];
    const readers: Reader[] = [];
    ctx.onTestFinished(async () => {
      await Promise.all(readers.map((r) => r.close()));
      await Promise.all(streams.map((s) => s.destroy().catch(() => {})));
    });
    return {
      stream(): Stream {
        const s = new Stream(uniqueName('scale-reader'), c.redis as never, { maxLen: 0 });
        streams.push(s);
        return s;
      },
      async reader(first: Stream, rest: Stream[], maxPolled: number, bufferSize: number): Promise<Reader> {
        const r = await first.newReader({ startAt: 'oldest', maxPolled, bufferSize });
        readers.push(r);
        for (const s of rest) await r.addStream(s);
        return r;
      },
    };
  }

  it('one read of several backlogged streams brings about maxPolled, not maxPolled from each', async (ctx) => {
    const f = fixture(ctx);
    const streams = [f.stream(), f.stream(), f.stream()];
    for (const s of streams) await addMany(s, 400);
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const maxPolled = 300;
    const bufferSize = 50;
    const reader = await f.reader(first, rest, maxPolled, bufferSize);
    // Not consumed: the first read's events stay buffered, and the loop then waits for room.
    const sub = reader.subscribe();
    await waitFor(() => sub.size > 0, { ...WAIT, what: 'a first read' });
    // Asking each stream for maxPolled buffered 900.
    expect(sub.size).toBeLessThanOrEqual(bufferSize + maxPolled);
    await stays(() => sub.size <= bufferSize + maxPolled, 300, 'the buffer within bufferSize + maxPolled');
  });

  it('busy and quiet streams: every event is delivered once, in order, none counted lost', async (ctx) => {
    const f = fixture(ctx);
    const streams = [f.stream(), f.stream(), f.stream()];
    const added = new Map<string, string[]>();
    for (const [i, n] of [700, 5, 250].entries()) {
      const s = streams[i] as Stream;
      added.set(s.name, await addMany(s, n));
    }
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const reader = await f.reader(first, rest, 200, 100);
    // One subscription throughout: events a reader reads while it has none are not kept for a later one.
    const sub = reader.subscribe();
    const got = new Map<string, string[]>(streams.map((s) => [s.name, []]));
    for (const ev of await take(sub, 955, 10_000)) got.get(ev.streamName)?.push(ev.id);
    for (const s of streams) expect(got.get(s.name)).toEqual(added.get(s.name));
    // Events added after the backlog drained still arrive.
    const late = await addMany(streams[1] as Stream, 3);
    expect((await take(sub, 3, 10_000)).map((ev) => ev.id)).toEqual(late);
    await reader.close();
    expect(reader.counters).toEqual({ delivered: 958, lost: 0 });
  });
});
