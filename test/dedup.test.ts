/**
 * Idempotent publish: `add(..., { dedupId })` within `dedupWindowMs`,
 * decided on the server with the XADD, with both clients, across clients and
 * across processes (children import the built library: `npm run build`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { dedupKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const REPO = resolve(import.meta.dirname, '..');
const LIB = join(REPO, 'packages/pulse-streaming/dist/esm');
const CHILD = join(REPO, 'test/support/wireChild.mjs');

async function xlen(c: TestClient, s: Stream): Promise<number> {
  return Number(await c.cmd('XLEN', s.key));
}

/** Redis server time, ms. */
async function serverMs(c: TestClient): Promise<number> {
  const [sec, us] = (await c.cmd('TIME')) as [string, string];
  return Number(sec) * 1000 + Math.floor(Number(us) / 1000);
}

/** The milliseconds of an entry ID: Redis server time. */
function ms(id: string | undefined): number {
  return Number(id?.split('-')[0]);
}

// All at once, both clients: each test has streams of its own (unique names) and reads nothing server-wide;
// their time is the windows and the TTL they wait out on the server's clock (1 s, 3 s, 2 s).
describe.concurrent.each(CLIENT_KINDS)('idempotent publish (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a second add of a dedupId adds nothing and resolves to the first ID; other dedupIds add', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const first = await s.add('e', 'one', { dedupId: 'order-1' });
    expect(await s.add('e', 'two', { dedupId: 'order-1' })).toBe(first);
    expect(await s.add('other', 'three', { dedupId: 'order-1', topic: 't', headers: { a: 'b' } })).toBe(first);
    const other = await s.add('e', 'four', { dedupId: 'order-2' });
    expect(other).not.toBe(first);
    const plain = await s.add('e', 'five');
    expect(await xlen(c, s)).toBe(3);
    const entries = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown]>;
    expect(entries.map(([id]) => String(id))).toEqual([first, other, plain]);
    await s.destroy();
  });

  it('adds of one tick (one merged call) keep dedup per event: a repeat resolves to the first of the call', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    const rs = reader.subscribe();
    const ids = await Promise.all([
      s.add('e', 'a', { dedupId: 'x' }),
      s.add('e', 'b'),
      s.add('e', 'c', { dedupId: 'x' }),
      s.add('e', 'd', { dedupId: 'y', headers: { h: '1' } }),
      s.add('e', 'e', { dedupId: 'y' }),
      s.add('e', 'f', { topic: 't' }),
    ]);
    expect(ids[2]).toBe(ids[0]);
    expect(ids[4]).toBe(ids[3]);
    expect(new Set(ids).size).toBe(4);
    const got = await take(rs, 4);
    expect(got.map((ev) => ev.payload.toString())).toEqual(['a', 'b', 'd', 'f']);
    expect(got.map((ev) => ev.id)).toEqual([ids[0], ids[1], ids[3], ids[5]]);
    expect(got[2]?.headers).toEqual({ h: '1' });
    expect(await xlen(c, s)).toBe(4);
    // 300 adds of 100 dedupIds in one tick: more than one merged call.
    const many = await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', String(i), { dedupId: `m${i % 100}` })));
    for (let i = 100; i < 300; i++) expect(many[i]).toBe(many[i % 100]);
    expect(await xlen(c, s)).toBe(104);
    await reader.close();
    await s.destroy();
  });

  it('after dedupWindowMs (server time) the same dedupId adds again, and expired records are dropped', async () => {
    // A window long enough that the repeat right after `second` falls inside it on a loaded machine.
    const s = new Stream(uniqueName(), c.redis, { dedupWindowMs: 1000 });
    // 'gone' first: its record expires before 'w''s, so the add that finds 'w' expired finds it expired too.
    await s.add('e', '1', { dedupId: 'gone' });
    const first = await s.add('e', '1', { dedupId: 'w' });
    // Repeats inside the window add nothing; the first one after it adds.
    const second = await waitFor(
      async () => {
        const id = await s.add('e', '2', { dedupId: 'w' });
        return id !== first ? id : undefined;
      },
      { interval: 20, timeout: 5000, what: 'the window to end' },
    );
    expect(ms(second) - ms(first)).toBeGreaterThanOrEqual(1000);
    expect(await xlen(c, s)).toBe(3);
    expect(await s.add('e', '3', { dedupId: 'w' })).toBe(second);
    // 'gone' is no longer current: the hash that held it had expired (a window
    // after its last write) or, a window old, became the previous one. Beside
    // 'w': when the hash began (''), the mark (byte 0xFF) and the largest window
    // (byte 0xFE), both read as U+FFFD.
    const keys = dedupKeys(s.name);
    expect(((await c.cmd('HKEYS', keys.current)) as string[]).map(String).sort()).toEqual(['', 'w', '\ufffd', '\ufffd']);
    const pttl = Number(await c.cmd('PTTL', keys.current));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    await s.destroy();
  });

  it('a window after the records began they move to the previous hash: those still in their window hit, the others add again', async () => {
    // 3 s: the current hash expires a window after its last write ('b'), and the add that renames it
    // must come before that; with 1 s (400 ms of margin) a loaded CI run added 'c' after it expired.
    const window = 3000;
    const s = new Stream(uniqueName(), c.redis, { dedupWindowMs: window });
    const keys = dedupKeys(s.name);
    const a = await s.add('e', 'a', { dedupId: 'a' });
    // When the current hash began: the server time read in the same script before the XADD of 'a' (a
    // millisecond or so before ms(a); more if the machine paused Redis in between).
    const since = Number(await c.cmd('HGET', keys.current, ''));
    expect(ms(a) - since).toBeGreaterThanOrEqual(0);
    expect(ms(a) - since).toBeLessThan(100);
    // 'b' well inside the current hash's window: still in its own when that hash is a window old.
    await waitFor(async () => (await serverMs(c)) >= since + 1200, { interval: 20, what: '1.2 s of server time' });
    const b = await s.add('e', 'b', { dedupId: 'b' });
    expect(await c.cmd('EXISTS', keys.old)).toBe(0);
    await waitFor(async () => (await serverMs(c)) >= since + window, { interval: 20, what: 'a window of server time' });
    // The first add a window after the current hash began renames it to the previous one.
    const fresh = await s.add('e', 'c', { dedupId: 'c' });
    expect(Number(await c.cmd('HEXISTS', keys.old, 'a'))).toBe(1);
    expect(Number(await c.cmd('HEXISTS', keys.old, 'b'))).toBe(1);
    expect(Number(await c.cmd('HEXISTS', keys.current, 'b'))).toBe(0);
    expect(String(await c.cmd('HGET', keys.current, 'c'))).toBe(fresh);
    // 'b' (in the previous hash, its window not ended) still deduplicates, and stays where it is.
    expect(ms(b) + window).toBeGreaterThan(await serverMs(c));
    expect(await s.add('e', 'b2', { dedupId: 'b' })).toBe(b);
    expect(Number(await c.cmd('HEXISTS', keys.current, 'b'))).toBe(0);
    // 'a' (its window ended, though its record is still kept) adds again, recorded in the current hash.
    await waitFor(async () => (await serverMs(c)) >= ms(a) + window, { interval: 5, what: "the end of a's window" });
    const again = await s.add('e', 'a2', { dedupId: 'a' });
    expect(again).not.toBe(a);
    expect(String(await c.cmd('HGET', keys.current, 'a'))).toBe(again);
    expect(await xlen(c, s)).toBe(4);
    await s.destroy();
    expect(await c.cmd('EXISTS', keys.current, keys.old)).toBe(0);
  });

  it('bad dedupId and dedupWindowMs are InvalidArgumentErrors before any Redis call', async () => {
    const name = uniqueName();
    for (const dedupWindowMs of [0, -1, 1.5, Number.NaN, '100', null]) {
      expect(() => new Stream(name, c.redis, { dedupWindowMs: dedupWindowMs as number })).toThrow(InvalidArgumentError);
    }
    const s = new Stream(name, c.redis, { dedupWindowMs: 1 });
    expect(s.dedupWindowMs).toBe(1);
    expect(new Stream(name, c.redis).dedupWindowMs).toBe(120_000);
    for (const dedupId of ['', 1, null, {}]) {
      await expect(s.add('e', 'p', { dedupId: dedupId as string })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await c.cmd('EXISTS', s.key)).toBe(0);
  });

  it('destroy() deletes the dedup records: the same dedupId then adds to the new stream', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const first = await s.add('e', '1', { dedupId: 'k' });
    const keys = dedupKeys(s.name);
    expect(await c.cmd('EXISTS', keys.current)).toBe(1);
    await s.destroy();
    expect(await c.cmd('EXISTS', keys.current, keys.old)).toBe(0);
    const again = await s.add('e', '2', { dedupId: 'k' });
    // Stored in the new stream. Not "again !== first": a new stream's first ID is <ms>-0, the same
    // as the old one's when both adds fall in one millisecond (CI once saw it).
    expect(await xlen(c, s)).toBe(1);
    expect(await c.cmd('XRANGE', s.key, '-', '+')).toEqual([[again, ['n', 'e', 'p', '2']]]);
    expect(first).toBeTypeOf('string');
    await s.destroy();
  });

  it('the dedup records expire with a TTL stream: once it expired, the same dedupId adds to the new one', async () => {
    // 2 s: with 300 ms a loaded CI run found the stream expired before it read its expiry time.
    const s = new Stream(uniqueName(), c.redis, { ttlMs: 2000 });
    const keys = dedupKeys(s.name);
    const first = await s.add('e', '1', { dedupId: 'k' });
    // The stream's own expiry time, to the millisecond (a PTTL-based copy could end 1 ms after it).
    expect(Number(await c.cmd('PEXPIRETIME', keys.current))).toBe(Number(await c.cmd('PEXPIRETIME', s.key)));
    expect(Number(await c.cmd('PTTL', keys.current))).toBeGreaterThan(0);
    await waitFor(async () => Number(await c.cmd('EXISTS', s.key)) === 0, { what: 'the stream to expire' });
    expect(await c.cmd('EXISTS', keys.current, keys.old)).toBe(0);
    const again = await s.add('e', '2', { dedupId: 'k' });
    expect(again).not.toBe(first);
    await s.destroy();
  });

  it('with onlyIfStreamExists and no stream, nothing is added nor remembered', async () => {
    const s = new Stream(uniqueName(), c.redis);
    expect(await s.add('e', '1', { dedupId: 'k', onlyIfStreamExists: true })).toBeUndefined();
    expect(await c.cmd('EXISTS', s.key, dedupKeys(s.name).current)).toBe(0);
    const id = await s.add('e', '2', { dedupId: 'k' });
    expect(await s.add('e', '3', { dedupId: 'k', onlyIfStreamExists: true })).toBe(id);
    expect(await xlen(c, s)).toBe(1);
    await s.destroy();
  });

  it('holds across clients: an ioredis and a node-redis producer get the same ID for one dedupId', async () => {
    const other = await connect(kind === 'ioredis' ? 'node-redis' : 'ioredis');
    try {
      const name = uniqueName();
      const a = new Stream(name, c.redis);
      const b = new Stream(name, other.redis);
      const ids = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).add('e', String(i), { dedupId: `d${i % 50}` })),
      );
      for (let i = 50; i < 100; i++) expect(ids[i]).toBe(ids[i - 50]);
      expect(await xlen(c, a)).toBe(50);
      await a.destroy();
    } finally {
      await other.close();
    }
  });
});

// On the shared cluster (npm run test:cluster) the children would reach a single node: headersCluster.test.ts
// runs this across processes on a cluster of its own. Concurrent: runs alongside the two clients' blocks above (its own stream).
describe.skipIf(process.env.PULSE_TEST_CLUSTER === '1')('idempotent publish across processes', { concurrent: true }, () => {
  beforeAll(() => {
    if (!existsSync(join(LIB, 'index.js'))) throw new Error(`${LIB} missing: run npm run build first`);
  });

  it('two processes (one per client) adding the same dedupIds at once get the same IDs, and each is stored once', async () => {
    const url = sharedUrl();
    const name = uniqueName('dp');
    const count = 200;
    const children = CLIENT_KINDS.map((kind) => {
      const child = spawn(
        process.execPath,
        [CHILD, JSON.stringify({ lib: LIB, url, kind, stream: name, mode: 'dedup', count })],
        {
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      );
      const lines: Array<Record<string, unknown>> = [];
      createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
      // 'close': after the last line is read ('exit' may come before).
      const exited = new Promise<void>((r) => child.on('close', () => r()));
      return { child, lines, exited };
    });
    try {
      await waitFor(() => children.every((ch) => ch.lines.some((l) => l.type === 'ready')), {
        timeout: 15_000,
        what: 'children ready',
      });
      for (const ch of children) ch.child.stdin?.write('go\n');
      await Promise.all(children.map((ch) => ch.exited));
      const results = children.map((ch) => {
        const errors = ch.lines.filter((l) => l.type === 'error');
        expect(errors).toEqual([]);
        return ch.lines.find((l) => l.type === 'ids') as { merged: string[]; sequential: string[] };
      });
      const [x, y] = results as [{ merged: string[]; sequential: string[] }, { merged: string[]; sequential: string[] }];
      expect(x.merged).toEqual(y.merged);
      expect(x.sequential).toEqual(x.merged);
      expect(y.sequential).toEqual(y.merged);
      expect(new Set(x.merged).size).toBe(count);
      const c = await connect('ioredis');
      try {
        expect(Number(await c.cmd('XLEN', `pulse:stream:${name}`))).toBe(count);
        await new Stream(name, c.redis).destroy();
      } finally {
        await c.close();
      }
    } finally {
      for (const ch of children) ch.child.kill('SIGKILL');
    }
  });
});
