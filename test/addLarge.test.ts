/**
 * Issue 19, large payloads: an add whose payload is too large to gain from
 * a merged call (batcher.ts, `MERGE_ALONE_BYTES`) leaves as a plain XADD in
 * the same pipeline step, in its place among the adds of its tick, when a
 * plain XADD can express it; the others still merge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** Calls of `cmd` since the last `CONFIG RESETSTAT` (nested calls of scripts included). */
async function calls(c: TestClient, cmd: string): Promise<number> {
  const info = String(await c.cmd('INFO', 'commandstats'));
  return Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

describe.each(CLIENT_KINDS)('large adds (%s)', (kind) => {
  // A private server: the command counts must not include other test files' commands.
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

  // Above the 8 KiB of MERGE_ALONE_BYTES (batcher.ts).
  const large = (tag: string): string => tag + 'x'.repeat(9 * 1024);
  /** A stream whose first add (and its one-time lifecycle script, goLifecycle.ts) is done, counts reset. */
  async function warm(s: Stream): Promise<Stream> {
    await s.add('warm', 'w');
    await c.cmd('CONFIG', 'RESETSTAT');
    return s;
  }

  it('a large add leaves as a plain XADD between the merged calls of the small ones, stored in the order issued', async () => {
    const s = await warm(new Stream(uniqueName('large'), c.redis, { maxLen: 0 }));
    const payloads = ['s0', 's1', large('L2'), 's3', 's4', large('L5'), 's6', 's7'];
    const ids = await Promise.all(payloads.map((p) => s.add('e', p)));
    // s0 s1 | L2 | s3 s4 | L5 | s6 s7: three script calls, eight XADDs (those of the scripts included).
    expect(await calls(c, 'eval')).toBe(3);
    expect(await calls(c, 'xadd')).toBe(8);
    const entries = ((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>).slice(1);
    expect(entries.map(([id]) => String(id))).toEqual(ids);
    expect(entries.map(([, f]) => String(f[f.indexOf('p') + 1]))).toEqual(payloads);
  });

  it('a large add a plain XADD cannot express (dedupId, TTL) still merges', async () => {
    const s = await warm(new Stream(uniqueName('large-dedup'), c.redis, { maxLen: 0 }));
    const ids = await Promise.all([
      s.add('e', 's0'),
      s.add('e', large('L1'), { dedupId: 'd' }),
      s.add('e', large('L2'), { dedupId: 'd' }),
      s.add('e', 's3'),
    ]);
    expect(await calls(c, 'eval')).toBe(1);
    expect(ids[2]).toBe(ids[1]);
    const t = await warm(new Stream(uniqueName('large-ttl'), c.redis, { maxLen: 0, ttlMs: 60_000 }));
    await Promise.all([t.add('e', 's0'), t.add('e', large('L1')), t.add('e', 's2')]);
    expect(await calls(c, 'eval')).toBe(1);
    expect(Number(await c.cmd('PTTL', t.key))).toBeGreaterThan(0);
  });
});

describe.each(CLIENT_KINDS)('large adds on the shared server (a cluster with npm run test:cluster) (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('600 adds of one tick, every third one large: stored once each, in the order issued', async () => {
    const s = new Stream(uniqueName('large-order'), c.redis, { maxLen: 0 });
    const payloads = Array.from({ length: 600 }, (_, i) => (i % 3 === 2 ? `${i}:${'x'.repeat(9 * 1024)}` : `${i}`));
    const ids = await Promise.all(payloads.map((p) => s.add('e', p)));
    const entries = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>;
    expect(entries.map(([id]) => String(id))).toEqual(ids);
    expect(entries.map(([, f]) => String(f[f.indexOf('p') + 1]))).toEqual(payloads);
    await s.destroy();
  });
});
