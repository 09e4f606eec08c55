/**
 * The Go Pulse v1.10 lifecycle record this library writes
 * (internal/goLifecycle.ts), checked without Go so it runs everywhere, and on
 * a cluster with `npm run test:cluster` (the record's key is in another slot
 * than the stream's). What Go makes of it: test/interopLifecycle.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName } from './support/clients.js';

async function hash(c: TestClient, key: string): Promise<Record<string, string>> {
  const raw = (await c.cmd('HGETALL', key)) as unknown;
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i])] = String(raw[i + 1]);
  else if (raw && typeof raw === 'object') for (const [k, v] of Object.entries(raw)) out[k] = String(v);
  return out;
}

const lifecycleKey = (name: string): string => `pulse:stream:${name}:lifecycle`;

describe.each(CLIENT_KINDS)('Go lifecycle record (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it('is written once per instance by the first stored add, as Go writes it, and left alone by destroy', async () => {
    const s = new Stream(uniqueName('rec'), c.redis, { maxLen: 300, ttlMs: 60_000 });
    const key = lifecycleKey(s.name);
    expect(await s.add('e', 'p', { onlyIfStreamExists: true })).toBeUndefined();
    expect(Number(await c.cmd('EXISTS', key))).toBe(0);
    await s.add('e', 'p');
    expect(await hash(c, key)).toEqual({
      generation: '1',
      state: 'active',
      physical_key: s.key,
      retention_config: 'v=2|max=300|mode=ttl|value=60000|sliding=false',
      ttl_owned: '1',
    });
    // Not per add: a record deleted behind the instance's back is not rewritten by it.
    await c.cmd('DEL', key);
    await Promise.all([s.add('e', 'p'), s.add('e', 'p')]);
    expect(Number(await c.cmd('EXISTS', key))).toBe(0);
    await new Stream(s.name, c.redis).add('e', 'p');
    // A new instance writes it again, with its own (default) options.
    expect((await hash(c, key)).retention_config).toBe('v=2|max=1000|mode=none|value=0|sliding=false');
    await s.destroy();
    expect((await hash(c, key)).state).toBe('active');
    await c.cmd('DEL', key);
  });

  it('is written by newSink on a stream its group creation made; one that exists is never changed', async () => {
    const s = new Stream(uniqueName('rec'), c.redis, { maxLen: 0, ttlMs: 5000, slidingTtl: true });
    const sink = await s.newSink('node');
    expect(await hash(c, lifecycleKey(s.name))).toMatchObject({
      generation: '1',
      retention_config: 'v=2|max=0|mode=ttl|value=5000|sliding=true',
    });
    await sink.close();
    const other = new Stream(uniqueName('rec'), c.redis);
    const theirs = { generation: '3', state: 'active', physical_key: `${other.key}:generation:3`, retention_config: 'x' };
    await c.cmd('HSET', lifecycleKey(other.name), ...Object.entries(theirs).flat());
    const rec = recordingLogger();
    await new Stream(other.name, c.redis, { logger: rec.logger }).add('e', 'p');
    expect(await hash(c, lifecycleKey(other.name))).toEqual(theirs);
    expect(rec.lines.filter((l) => l.level === 'warn').map((l) => l.obj)).toEqual([
      expect.objectContaining({ generation: '3', physicalKey: `${other.key}:generation:3` }),
    ]);
    await s.destroy();
    await other.destroy();
    // One key per DEL: on a cluster they are in different slots.
    for (const k of [lifecycleKey(s.name), lifecycleKey(other.name)]) await c.cmd('DEL', k);
  });

  it('a key of another type in its place: adds still resolve, one warning, no retry per add', async () => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('rec'), c.redis, { logger: rec.logger });
    await c.cmd('SET', lifecycleKey(s.name), 'not a hash');
    const ids = [await s.add('e', 'p'), await s.add('e', 'p')];
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    const warns = rec.lines.filter((l) => l.level === 'warn');
    expect(warns.map((l) => l.msg)).toEqual(['cannot write Go Pulse lifecycle record']);
    await s.destroy();
    await c.cmd('DEL', lifecycleKey(s.name));
  });

  it("under retention 'interest' says unbounded whatever maxLen: Go producers adopting it never trim", async () => {
    const s = new Stream(uniqueName('rec'), c.redis, { retention: 'interest', maxLen: 5 });
    await s.add('e', 'p');
    expect((await hash(c, lifecycleKey(s.name))).retention_config).toBe('v=2|max=0|mode=none|value=0|sliding=false');
    await s.destroy();
    await c.cmd('DEL', lifecycleKey(s.name));
  });
});
