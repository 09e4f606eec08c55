/**
 * `retention: 'interest'` (API.md "Retention", SEMANTICS section 8): trimming
 * never removes an entry a sink has not read or not acked; `maxLen` applies to
 * the entries every sink is done with. Groups are driven with raw commands so
 * that their positions are exact; one test uses a live sink.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

const MAX_LEN = 10;
/** `MAXLEN ~` removes whole nodes of the stream (stream-node-max-entries, 100 by default). */
const NODE = 100;

describe.each(CLIENT_KINDS)("retention: 'interest' (%s)", (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  const interest = (): Stream => new Stream(uniqueName('ret'), c.redis, { maxLen: MAX_LEN, retention: 'interest' });
  const len = async (s: Stream): Promise<number> => Number(await c.cmd('XLEN', s.key));
  const storedIds = async (s: Stream): Promise<Set<string>> =>
    new Set(((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown]>).map(([id]) => String(id)));
  /** Adds `merged` events in one tick (script calls), then `lone` awaited one by one; resolves to their IDs in order. */
  const add = async (s: Stream, merged: number, lone = 0): Promise<string[]> => {
    const ids = (await Promise.all(Array.from({ length: merged }, (_, i) => s.add('e', `m${i}`)))) as string[];
    for (let i = 0; i < lone; i++) ids.push((await s.add('e', `l${i}`)) as string);
    return ids;
  };
  /** Group `g` takes the next `n` entries (they become pending); which ones is known from the add order. */
  const read = (s: Stream, g: string, n: number) => c.cmd('XREADGROUP', 'GROUP', g, 'c', 'COUNT', n, 'STREAMS', s.key, '>');
  const ack = (s: Stream, g: string, ids: string[]) => c.cmd('XACK', s.key, g, ...ids);
  const group = (s: Stream, g: string) => c.cmd('XGROUP', 'CREATE', s.key, g, '$', 'MKSTREAM');
  const expectAllStored = async (s: Stream, ids: string[]) => {
    const have = await storedIds(s);
    expect(ids.filter((id) => !have.has(id))).toEqual([]);
  };

  it("is validated and defaults to 'limits'", () => {
    expect(new Stream(uniqueName('ret'), c.redis).retention).toBe('limits');
    expect(() => new Stream(uniqueName('ret'), c.redis, { retention: 'all' as never })).toThrow(InvalidArgumentError);
  });

  it('with no sink, trims to maxLen as limits does', async () => {
    const s = interest();
    await add(s, 300, 20);
    // Lone adds trim one time in 50 (LONE_ADDS_PER_TRIM): as approximate as MAXLEN ~, a little more.
    expect(await len(s)).toBeLessThanOrEqual(MAX_LEN + NODE + 50);
    await s.destroy();
  });

  it('lone adds are plain XADDs that do not trim, but one in 50 trims', async () => {
    const s = interest();
    await group(s, 'g');
    const ids = await add(s, 0, 200);
    expect(await len(s)).toBe(200);
    await read(s, 'g', 200);
    await ack(s, 'g', ids);
    await add(s, 0, 50);
    expect(await len(s)).toBeLessThanOrEqual(MAX_LEN + 50);
    await s.destroy();
  });

  it('keeps every entry a sink has not read, merged adds and lone adds alike; trims once it has read and acked', async () => {
    const s = interest();
    await group(s, 'g');
    const ids = await add(s, 300, 20);
    expect(await len(s)).toBe(320);
    await read(s, 'g', 320);
    await ack(s, 'g', ids);
    await add(s, 2); // a script call: it trims
    expect(await len(s)).toBeLessThanOrEqual(MAX_LEN + NODE);
    await s.destroy();
  });

  it('keeps what a sink has not read when an entry after its position was deleted', async () => {
    const s = interest();
    await group(s, 'g');
    const ids = await add(s, 300);
    await read(s, 'g', 100);
    await ack(s, 'g', ids.slice(0, 100));
    await s.remove(ids[150] as string);
    const more = await add(s, 300, 5);
    await expectAllStored(s, [...ids.slice(100, 150), ...ids.slice(151), ...more]);
    expect(await len(s)).toBeLessThanOrEqual(604 - NODE);
    await s.destroy();
  });

  it('finds the entry after a last-delivered ID exactly (decimal carry, largest sequence)', async () => {
    // [where the group has read through, the first entry that must stay]
    for (const [read, first] of [
      ['1-99', '1-100'],
      ['2-18446744073709551615', undefined],
    ] as const) {
      const s = interest();
      for (let i = 1; i <= 150; i++) await c.cmd('XADD', s.key, `1-${i}`, 'n', 'e', 'p', 'old');
      await c.cmd('XADD', s.key, '2-18446744073709551615', 'n', 'e', 'p', 'edge');
      await c.cmd('XGROUP', 'CREATE', s.key, 'g', read);
      const ids = await add(s, 20);
      // Everything after what the group read stays, nothing before it.
      const kept = [...(await storedIds(s))];
      expect(kept[0]).toBe(first ?? ids[0]);
      expect(kept.length).toBe(first ? 150 + 1 + 20 - 99 : 20);
      await expectAllStored(s, ids);
      await s.destroy();
    }
  });

  it('keeps pending entries until they are acked, and what comes after them', async () => {
    const s = interest();
    await group(s, 'g');
    const first = await add(s, 300);
    await read(s, 'g', 300);
    const unread = await add(s, 300);
    expect(await len(s)).toBe(600);
    await ack(s, 'g', first.slice(0, 250));
    await add(s, 2); // a script call: it trims
    // The acked entries before the oldest pending one may go; nothing after it.
    await expectAllStored(s, [...first.slice(250), ...unread]);
    expect(await len(s)).toBeLessThanOrEqual(601 - NODE);
    await ack(s, 'g', first.slice(250));
    await read(s, 'g', 301);
    const rest = await add(s, 0, 1);
    await ack(s, 'g', [...unread, ...rest]);
    await add(s, 2); // a script call: it trims
    expect(await len(s)).toBeLessThanOrEqual(MAX_LEN + NODE);
    await s.destroy();
  });

  it('two sinks at different positions: the one behind holds the trim point', async () => {
    const s = interest();
    await group(s, 'ahead');
    await group(s, 'behind');
    const ids = await add(s, 300);
    await read(s, 'ahead', 300);
    await ack(s, 'ahead', ids);
    await read(s, 'behind', 100);
    await ack(s, 'behind', ids.slice(0, 50));
    const more = await add(s, 200, 5);
    await expectAllStored(s, [...ids.slice(50), ...more]);
    await read(s, 'ahead', 1000);
    await ack(s, 'ahead', more);
    await expectAllStored(s, [...ids.slice(50), ...more]);
    await read(s, 'behind', 1000);
    await ack(s, 'behind', [...ids.slice(50), ...more]);
    await add(s, 2); // a script call: it trims
    expect(await len(s)).toBeLessThanOrEqual(MAX_LEN + NODE);
    await s.destroy();
  });

  it('a live sink behind a burst far past maxLen loses nothing, and trimming catches up after its acks', async () => {
    const s = interest();
    const sink = await s.newSink('live', { blockMs: 100, ackGracePeriodMs: 10_000 });
    const got: SinkEvent[] = [];
    const done = collect(sink.subscribe(), got, true);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(...(await add(s, 300)));
      await waitFor(() => got.length >= ids.length, { timeout: 15_000, what: 'every event delivered' });
      expect(new Set(got.map((e) => e.id))).toEqual(new Set(ids));
      expect(sink.counters.lost).toBe(0);
      await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'live')) as unknown[])[0]) === 0, { what: 'all acked' });
      await add(s, 2); // a script call: it trims
      expect(await len(s)).toBeLessThanOrEqual(MAX_LEN + NODE);
    } finally {
      await sink.close();
      await done;
      await s.destroy();
    }
  });
});
