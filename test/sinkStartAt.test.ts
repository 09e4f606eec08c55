/**
 * Where a new consumer group starts (`startAt`), and that it is ignored once
 * the group exists; both clients, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS, connect, type TestClient, take } from './support/clients.js';
import { sinkSuite } from './support/sinkSuite.js';

describe.concurrent.each(CLIENT_KINDS)('sink startAt (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { groups, fixture } = sinkSuite(() => c);

  describe('startAt for a new group', () => {
    async function seeded(ctx: TestContext) {
      const f = fixture(ctx);
      const s = f.stream();
      for (const id of ['1000-0', '2000-0', '2000-1', '3000-0']) await c.cmd('XADD', s.key, id, 'n', `e${id}`, 'p', id);
      return { f, s };
    }

    it("'newest' (the default) starts after the last entry", async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s);
      const sub = sink.subscribe();
      const id = await s.add('new', 'x');
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(id);
    });

    it("'newest' on a stream that does not exist yet creates it and reads from its first entry", async (ctx) => {
      const f = fixture(ctx);
      const s = f.stream();
      const sink = await f.sink(s);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(1);
      const sub = sink.subscribe();
      const id = await s.add('first', 'x');
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(id);
    });

    it("'oldest' starts at the oldest entry", async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s, { startAt: 'oldest' });
      const got = await take(sink.subscribe(), 4);
      expect(got.map((e) => e.id)).toEqual(['1000-0', '2000-0', '2000-1', '3000-0']);
    });

    it('a Date starts at the first entry on or after it, <ms>-0 included', async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s, { startAt: new Date(2000) });
      const got = await take(sink.subscribe(), 3);
      expect(got.map((e) => e.id)).toEqual(['2000-0', '2000-1', '3000-0']);
      expect(got[0]?.eventName).toBe('e2000-0');
    });

    it('{ after: id } starts at the first entry whose ID is greater', async (ctx) => {
      const { f, s } = await seeded(ctx);
      const sink = await f.sink(s, { startAt: { after: '2000-0' } });
      const got = await take(sink.subscribe(), 2);
      expect(got.map((e) => e.id)).toEqual(['2000-1', '3000-0']);
      const sink2 = await f.sink(s, { startAt: { after: '2500-0' } }, 'sink2');
      const [ev] = await take(sink2.subscribe(), 1);
      expect(ev?.id).toBe('3000-0');
    });

    it('startAt is ignored when the group already exists', async (ctx) => {
      const { f, s } = await seeded(ctx);
      const first = await f.sink(s); // newest: group after 3000-0
      await first.close();
      const again = await f.sink(s, { startAt: 'oldest' });
      const sub = again.subscribe();
      const id = await s.add('new', 'x');
      const [ev] = await take(sub, 1);
      expect(ev?.id).toBe(id);
      const g = (await groups(s.key))[0];
      expect(g?.name).toBe('sink');
    });
  });
});
