/**
 * Replaying dead letters (exactly once, even when replays overlap; the
 * stream's TTL and maxLen as for `add`) and the bookkeeping keys of a stream
 * (they expire with it, and a sink that recreates its group registers
 * again). On one node and on a cluster (the shared one with
 * PULSE_TEST_CLUSTER=1, else one started here), with both clients.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { replayDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { driverFor, evalScript } from '../packages/pulse-streaming/src/internal/driver.js';
import { replayClaimKey, replayedKey } from '../packages/pulse-streaming/src/internal/keys.js';
import { addReplayed } from '../packages/pulse-streaming/src/internal/replayScripts.js';
import {
  CLIENT_KINDS,
  type ClientKind,
  collect,
  connect,
  recordingLogger,
  sharedUrl,
  stays,
  type TestClient,
  uniqueName,
  waitFor,
} from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { RedisCluster } from './support/redisCluster.js';

type Target = 'one node' | 'a cluster';
const clusterMode = inject('clusterPorts').length > 0;
let ownCluster: Promise<RedisCluster> | undefined;

async function connectTo(target: Target, kind: ClientKind): Promise<TestClient> {
  if (target === 'one node') return connect(kind, sharedUrl());
  if (clusterMode) return connect(kind);
  ownCluster ??= RedisCluster.start();
  return connectCluster(kind, await ownCluster);
}

afterAll(async () => {
  await (await ownCluster)?.stop();
});

async function num(c: TestClient, ...args: (string | number)[]): Promise<number> {
  return Number(await c.cmd(...args));
}

/** Every key of the library's bookkeeping for stream `name` (`{pulse:stream:<name>}:*`). */
async function libraryKeys(c: TestClient, name: string): Promise<string[]> {
  const pattern = `{pulse:stream:${name}}:*`;
  if (c.redis instanceof Cluster) {
    const perNode = await Promise.all(c.redis.nodes('master').map((n) => n.keys(pattern)));
    return perNode.flat();
  }
  // One node, or node-redis on a cluster: routed by the pattern's hash tag, the stream's slot.
  return ((await c.cmd('KEYS', pattern)) as unknown[]).map(String);
}

/** Adds `n` dead letters of `stream` (payloads '0'...) to its dead-letter stream; resolves to their IDs. */
async function addLetters(c: TestClient, stream: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = await c.cmd(
      'XADD',
      `pulse:stream:${stream}:dead`,
      '*',
      'n',
      'ev',
      'p',
      String(i),
      'source_stream',
      stream,
      'source_sink',
      'workers',
      'source_id',
      `${i + 1}-0`,
      'deliveries',
      '3',
      'reason',
      'max deliveries reached',
    );
    ids.push(String(id));
  }
  return ids;
}

/** The payloads in a stream, in order. */
async function payloads(c: TestClient, key: string): Promise<string[]> {
  const raw = (await c.cmd('XRANGE', key, '-', '+')) as Array<[string, string[]]>;
  return raw.map(([, f]) => String(f[f.indexOf('p') + 1]));
}

const TARGETS: Target[] = ['one node', 'a cluster'];
const CASES = TARGETS.flatMap((t) => CLIENT_KINDS.map((k) => [t, k] as const));

// Concurrent, the four cases and their tests: each test has streams of its own (unique names) and looks
// only at their keys; the cluster's start (in the first cluster case's beforeAll) no longer waits for the
// one-node cases.
describe.concurrent.each(CASES)('dead-letter replay on %s (%s)', (target, kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectTo(target, kind);
  }, 60_000);
  afterAll(() => c?.close());

  it('overlapping replays add each dead letter exactly once', async () => {
    const name = uniqueName('dr');
    const dead = `pulse:stream:${name}:dead`;
    await addLetters(c, name, 20);
    // Three operators at once, each with a Stream of its own.
    const replays = await Promise.all([0, 1, 2].map(() => replayDeadLetters(new Stream(name, c.redis, { maxLen: 0 }))));
    const ids = replays.flat();
    expect(ids).toHaveLength(20);
    expect(new Set(ids).size).toBe(20);
    const s = new Stream(name, c.redis);
    expect((await payloads(c, s.key)).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 20 }, (_, i) => String(i)),
    );
    expect(await num(c, 'XLEN', dead)).toBe(0);
    expect(await libraryKeys(c, name)).toEqual([]);
    expect(await libraryKeys(c, `${name}:dead`)).toEqual([]);
    await s.destroy();
    await c.cmd('DEL', dead);
  });

  it.runIf(target === 'a cluster')(
    'a replayer that stopped midway loses nothing and duplicates nothing: the next replay finishes its moves',
    async () => {
      const name = uniqueName('dr');
      const deadName = `${name}:dead`;
      const dead = `pulse:stream:${deadName}`;
      const s = new Stream(name, c.redis, { maxLen: 0 });
      const [claimedOnly, added] = (await addLetters(c, name, 2)) as [string, string];
      // What a replayer that crashed leaves: both letters claimed (until the
      // claims expire), the second one already added and recorded.
      const recorded = String(await c.cmd('XADD', s.key, '*', 'n', 'ev', 'p', '1'));
      await c.cmd('HSET', replayedKey(name), `${dead} ${added}`, recorded);
      for (const id of [claimedOnly, added]) await c.cmd('SET', replayClaimKey(deadName, id), 'crashed', 'PX', '400');

      // While claimed, another replay leaves them alone, and they are still dead letters.
      expect(await replayDeadLetters(s)).toEqual([]);
      expect(await num(c, 'XLEN', dead)).toBe(2);
      // Once the claims expired: the first is added, the second only deleted.
      const claims = [claimedOnly, added].map((id) => replayClaimKey(deadName, id));
      await waitFor(async () => (await num(c, 'EXISTS', ...claims)) === 0, { what: 'the crashed claims to expire' });
      const out = await replayDeadLetters(s);
      expect(out).toHaveLength(2);
      expect(out[1]).toBe(recorded);
      expect(await payloads(c, s.key)).toEqual(['1', '0']);
      expect(await num(c, 'XLEN', dead)).toBe(0);
      expect(await libraryKeys(c, name)).toEqual([]);
      await s.destroy();
      await c.cmd('DEL', dead);
    },
  );

  it.runIf(target === 'a cluster')(
    'an add that reaches Redis too long after its claim is refused: another replayer may own the letter by then',
    async () => {
      const s = new Stream(uniqueName('dr'), c.redis, { maxLen: 0 });
      const driver = driverFor(c.redis);
      const now = Number(((await c.cmd('TIME')) as unknown[])[0]) * 1000;
      const letter = ['field', 1, 'n', 'ev'] as const;
      const head = [0, '', 'absolute'];
      const late = await evalScript(
        driver,
        addReplayed,
        [s.key, replayedKey(s.name)],
        [...head, now - 25_000, 20_000, ...letter],
      );
      expect(String(late)).toBe('late');
      expect(await num(c, 'EXISTS', s.key)).toBe(0);
      const onTime = await evalScript(driver, addReplayed, [s.key, replayedKey(s.name)], [...head, now, 20_000, ...letter]);
      expect(onTime).toHaveLength(1);
      expect(await num(c, 'XLEN', s.key)).toBe(1);
      await s.destroy();
    },
  );

  it('a replay that fails keeps every letter it did not add in the dead-letter stream, for the next replay', async () => {
    const name = uniqueName('dr');
    const dead = `pulse:stream:${name}:dead`;
    const s = new Stream(name, c.redis, { maxLen: 0 });
    await addLetters(c, name, 3);
    await c.cmd('SET', s.key, 'not a stream');
    await expect(replayDeadLetters(s)).rejects.toThrow(/WRONGTYPE/);
    expect(await num(c, 'XLEN', dead)).toBe(3);
    await c.cmd('DEL', s.key);
    // No claim left behind: the next replay moves them at once.
    expect(await replayDeadLetters(s)).toHaveLength(3);
    expect(await payloads(c, s.key)).toEqual(['0', '1', '2']);
    expect(await num(c, 'XLEN', dead)).toBe(0);
    expect(await libraryKeys(c, `${name}:dead`)).toEqual([]);
    await s.destroy();
    await c.cmd('DEL', dead);
  });

  it('a replay applies the stream TTL as add does: set on an expired stream, refreshed when sliding, kept when absolute', async () => {
    const name = uniqueName('dr');
    const dead = `pulse:stream:${name}:dead`;
    const [first, second, third] = (await addLetters(c, name, 3)) as [string, string, string];
    const absolute = new Stream(name, c.redis, { ttlMs: 60_000 });
    // The stream expired (no key): the replay creates it, with its expiry.
    expect(await replayDeadLetters(absolute, { ids: [first] })).toHaveLength(1);
    const pttl = await num(c, 'PTTL', absolute.key);
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    // Absolute: a later replay leaves the expiry alone.
    await c.cmd('PEXPIRE', absolute.key, 30_000);
    expect(await replayDeadLetters(absolute, { ids: [second] })).toHaveLength(1);
    expect(await num(c, 'PTTL', absolute.key)).toBeLessThanOrEqual(30_000);
    // Sliding: each replay refreshes it.
    const sliding = new Stream(name, c.redis, { ttlMs: 60_000, slidingTtl: true });
    expect(await replayDeadLetters(sliding, { ids: [third] })).toHaveLength(1);
    expect(await num(c, 'PTTL', sliding.key)).toBeGreaterThan(50_000);
    expect(await payloads(c, absolute.key)).toEqual(['0', '1', '2']);
    expect(await libraryKeys(c, name)).toEqual([]);
    await absolute.destroy();
    await c.cmd('DEL', dead);
  });

  it('a replay trims the stream to its maxLen as add does', async () => {
    const name = uniqueName('dr');
    const dead = `pulse:stream:${name}:dead`;
    const s = new Stream(name, c.redis, { maxLen: 10 });
    // 300 entries, added directly without trimming.
    for (let i = 0; i < 300; i++) await c.cmd('XADD', s.key, '*', 'n', 'x', 'p', 'old');
    expect(await num(c, 'XLEN', s.key)).toBe(300);
    await addLetters(c, name, 1);
    expect(await replayDeadLetters(s)).toHaveLength(1);
    const len = await num(c, 'XLEN', s.key);
    expect(len).toBeLessThan(300);
    expect(len).toBeGreaterThanOrEqual(10);
    await s.destroy();
    await c.cmd('DEL', dead);
  });
});

// Concurrent: these tests mostly wait for expiries, each on a stream of its own.
describe.concurrent.each(CASES)('bookkeeping keys on %s (%s)', (target, kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectTo(target, kind);
  }, 60_000);
  afterAll(() => c?.close());

  const sinkOptions = { ackGracePeriodMs: 200, blockMs: 100 };

  it('an expired TTL stream leaves no bookkeeping key behind, and its live sinks work until it expires', async ({ expect }) => {
    const name = uniqueName('bk');
    const { logger, lines } = recordingLogger();
    // Long enough for two sinks to start and get an event on a loaded machine.
    const s = new Stream(name, c.redis, { ttlMs: 4000, logger });
    const sinks = [await s.newSink('one', sinkOptions), await s.newSink('two', sinkOptions)];
    const got: SinkEvent[][] = [[], []];
    const done = sinks.map((k, i) => collect(k.subscribe(), got[i] as SinkEvent[], true));
    await s.add('e', 'x');
    await waitFor(() => got.every((g) => g.length === 1), { timeout: 10_000, what: 'both sinks to get the event' });
    // Alive: registered, with the stream's expiry.
    expect(((await c.cmd('SMEMBERS', `{${s.key}}:sinks`)) as unknown[]).map(String).sort()).toEqual(['one', 'two']);
    for (const key of [`{${s.key}}:sinks`, `{${s.key}}:sink:one:consumers`, `{${s.key}}:sink:two:consumers`]) {
      expect(await num(c, 'PTTL', key)).toBeGreaterThan(0);
    }
    await waitFor(async () => (await num(c, 'EXISTS', s.key)) === 0, { timeout: 10_000, what: 'the stream to expire' });
    await waitFor(async () => (await libraryKeys(c, name)).length === 0, { timeout: 5000, what: 'no bookkeeping key left' });
    // The live sinks, now waiting for the stream to come back, write none.
    await stays(async () => (await libraryKeys(c, name)).length === 0, 400, 'no bookkeeping key left');
    // Each sink had handled its event: the expiry took nothing from it. Its estimate (the last check's
    // unread and pending events) once counted the event pending at that check, acked since: 1 lost.
    const gone = () => lines.filter((l) => l.msg?.startsWith('stream key is gone')).length;
    await waitFor(() => gone() >= 2, { timeout: 5000, what: 'both sinks to find the stream gone' });
    expect(sinks.map((k) => k.counters.lost)).toEqual([0, 0]);
    await Promise.all(sinks.map((k) => k.close()));
    await Promise.all(done);
    expect(await libraryKeys(c, name)).toEqual([]);
  });

  it('a sliding TTL stream keeps its bookkeeping while adds keep it alive, and none after it expired', async ({ expect }) => {
    const name = uniqueName('bk');
    const s = new Stream(name, c.redis, { ttlMs: 1500, slidingTtl: true });
    const sink = await s.newSink('one', sinkOptions);
    const got: SinkEvent[] = [];
    const done = collect(sink.subscribe(), got, true);
    // Adds for well past the first expiry: the stream and the sink's keys live on.
    for (let i = 0; i < 20; i++) {
      await s.add('e', String(i));
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(() => got.length === 20, { timeout: 10_000, what: 'every event' });
    expect(await num(c, 'EXISTS', s.key, `{${s.key}}:sinks`, `{${s.key}}:sink:one:consumers`)).toBe(3);
    await waitFor(async () => (await num(c, 'EXISTS', s.key)) === 0, { timeout: 10_000, what: 'the stream to expire' });
    await waitFor(async () => (await libraryKeys(c, name)).length === 0, { timeout: 5000, what: 'no bookkeeping key left' });
    await sink.close();
    await done;
  });

  it('a sink that recreates its group after destroy() registers again, so the next destroy() leaves no key', async ({
    expect,
  }) => {
    const name = uniqueName('bk');
    // But the obituaries: what destroy() took from each sink, kept 10 minutes for a live instance.
    const keysLeft = async () => (await libraryKeys(c, name)).filter((k) => !k.endsWith(':obituary'));
    const s = new Stream(name, c.redis);
    // The default grace period: keep-alives (which register too) every 5 s, so
    // that the registration seen below is the recreated group's.
    const sink = await s.newSink('sk', { blockMs: 100 });
    const got: SinkEvent[] = [];
    const done = collect(sink.subscribe(), got, true);
    await s.add('e', 'a');
    await waitFor(() => got.length === 1, { timeout: 10_000, what: 'the first event' });
    await s.destroy();
    expect(await keysLeft()).toEqual([]);
    await stays(async () => (await keysLeft()).length === 0, 300, 'no key brought back by the live sink');
    // A producer creates the stream again: the sink recreates its group at 0 and reads on.
    await s.add('e', 'b');
    // The sink looks for the key every grace period / 4 (at most 500 ms) while it waits for it. It once
    // slept until its next sweep instead (9-10 s here): the bound is a quarter of that, for slow machines.
    await waitFor(() => got.length === 2, { timeout: 2500, what: 'the event added after destroy()' });
    expect(got.map((e) => e.payload.toString())).toEqual(['a', 'b']);
    expect(((await c.cmd('SMEMBERS', `{${s.key}}:sinks`)) as unknown[]).map(String)).toEqual(['sk']);
    await s.destroy();
    expect(await num(c, 'EXISTS', s.key)).toBe(0);
    expect(await keysLeft()).toEqual([]);
    await stays(async () => (await keysLeft()).length === 0, 300, 'no key brought back by the live sink');
    await sink.close();
    await done;
    expect(await keysLeft()).toEqual([]);
    // Both events were handled: destroy() took nothing (it once reported its last check's estimate, 1).
    expect(sink.counters.lost).toBe(0);
  });
});
