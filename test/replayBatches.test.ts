/**
 * A replay across cluster slots claims its letters in batches of at most
 * 4 MB of events (a bigger letter alone), so that the letters it brings into
 * the process stay bounded whatever their number (outside review AI, defect
 * 3); on one node the moves run inside Redis. Either way every letter goes
 * back once, in dead-letter order, byte for byte. On one node and on a
 * cluster (the shared one with PULSE_TEST_CLUSTER=1, else one started here),
 * with both clients. The four cases run at once (unique stream names, each
 * test deletes its keys): the one-node ones while the cluster starts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, sharedUrl, type TestClient, uniqueName } from './support/clients.js';
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

/** SHA-1 of each entry's payload (`p`) in `key`, computed by Redis (no payload comes back). */
const PAYLOAD_DIGESTS = `local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = e[2]
  for i = 1, #f, 2 do if f[i] == 'p' then out[#out + 1] = redis.sha1hex(f[i + 1]) end end
end
return out`;

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** Sizes of the payloads: two big ones together pass a batch, one alone does too; small ones between. */
const SIZES = [3 << 20, 100, 3 << 20, 5 << 20, 100, 1 << 20, 1 << 20];

const TARGETS: Target[] = ['one node', 'a cluster'];
const CASES = TARGETS.flatMap((t) => CLIENT_KINDS.map((k) => [t, k] as const));

describe.concurrent.each(CASES)('replay of big letters on %s (%s)', (target, kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectTo(target, kind);
  }, 60_000);
  afterAll(() => c?.close());

  it('replays every letter once, in order, byte for byte', { timeout: 30_000 }, async (ctx) => {
    const name = uniqueName('rb');
    const dead = `pulse:stream:${name}:dead`;
    const s = new Stream(name, c.redis, { maxLen: 0 });
    ctx.onTestFinished(async () => {
      await s.destroy().catch(() => {});
      await c.cmd('DEL', dead);
    });
    const payloads = SIZES.map((n, i) => Buffer.alloc(n, i + 1));
    for (const [i, p] of payloads.entries()) {
      await c.cmd('XADD', dead, '*', 'n', 'ev', 'p', p, 'source_stream', name, 'source_sink', 'k', 'source_id', `${i + 1}-0`);
    }

    const ids = await replayDeadLetters(s);

    expect(ids).toHaveLength(SIZES.length);
    expect(((await c.cmd('EVAL', PAYLOAD_DIGESTS, 1, s.key)) as unknown[]).map(String)).toEqual(payloads.map(sha1));
    expect(Number(await c.cmd('XLEN', dead))).toBe(0);
  });
});
