/**
 * Outside review AL (defect 3; line numbers as of commit 80cbcb0): how many connections a sink over
 * many hash slots holds on each node.
 *
 * docs/internals.md ("What an idle sink costs Redis"): on a cluster a sink
 * reads "one per hash slot it reads (one connection per slot)". Each slot
 * group's read connection is a duplicate of the whole cluster client
 * (`openOwned`, nodeRedisDriver.ts / ioredisDriver.ts), and node-redis'
 * cluster connects to every master at `connect()` (ioredis to the node it
 * asks for the slot table, often another one): every master holds a
 * connection for every slot group of the sink, those it serves or not. With
 * node-redis and M masters, M times the connections the sink uses; a sink
 * over 1000 slots on 10 masters would open 10,000 (maxclients' default on
 * each node is 10,000, shared by every instance and client).
 * Failed before the fix: node-redis, every run (72 read connections, 24 on each of 3 masters).
 * Fixed for node-redis: the library's cluster duplicates connect with `minimizeConnections`.
 * Not fixed for ioredis (43 connections, 16/12/15, in the review): its Cluster client has no such
 * option (each duplicate keeps the connection it found the slot table on); only node-redis runs here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { type TestClient, uniqueName, waitFor } from './support/clients.js';
import { connectCluster, namesInDistinctSlots } from './support/clusterClients.js';
import { RedisCluster, rawCommandBulk } from './support/redisCluster.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

/** Connections named for sink `sink`'s reads on the node at `port`: all of them, and those blocked in a read. */
async function readConns(port: number, sink: string): Promise<{ all: number; blocked: number }> {
  let all = 0;
  let blocked = 0;
  for (const line of (await rawCommandBulk(port, 'CLIENT LIST')).split('\n')) {
    if (!line.includes(`name=pulse:sink:${sink}:read`)) continue;
    all++;
    if (/ flags=\S*b/.test(line) && line.includes('cmd=xreadgroup')) blocked++;
  }
  return { all, blocked };
}

describe.each(['node-redis'] as const)('a sink over many slots (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectCluster(kind, cluster);
  });
  afterAll(() => c?.close());

  it('holds about one read connection per slot it reads, on the node serving that slot', async () => {
    const n = 24;
    const streams = namesInDistinctSlots(n, 'cn').map((name) => new Stream(name, c.redis));
    const sinkName = uniqueName('conns');
    const sink = await (streams[0] as Stream).newSink(sinkName, { blockMs: 300 });
    try {
      for (const s of streams.slice(1)) await sink.addStream(s);
      sink.subscribe();
      const masters = await cluster.masters();
      // How many of the sink's slots each master serves.
      const served = new Map<number, number>();
      for (const s of streams) {
        const m = await cluster.masterOf(slotOf(s.key));
        served.set(m.port, (served.get(m.port) ?? 0) + 1);
      }
      const blockedAll = async () => {
        let b = 0;
        for (const m of masters) b += (await readConns(m.port, sinkName)).blocked;
        return b;
      };
      await waitFor(async () => (await blockedAll()) === n, { timeout: 15_000, what: 'every slot read blocked' });
      const per: string[] = [];
      let total = 0;
      for (const node of cluster.nodes.filter((x) => x.running)) {
        const { all } = await readConns(node.port, sinkName);
        total += all;
        per.push(`${node.port}: ${all} (serves ${served.get(node.port) ?? 0} of the sink's slots)`);
      }
      // One connection per slot read (a little slack for a client's discovery connection).
      expect(total, `read connections of the sink by node:\n${per.join('\n')}`).toBeLessThanOrEqual(n + masters.length);
    } finally {
      await sink.close();
      await Promise.all(streams.map((s) => s.destroy()));
    }
  }, 40_000);
});
