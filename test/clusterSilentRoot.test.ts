/**
 * A node-redis cluster client whose only root node is the master that goes
 * silent (frozen, partitioned) and fails over. The sink's read of that slot
 * is found blocked on the silent node and opened again on a new connection
 * (loops.ts, the watch of blocked reads); node-redis' `connect()` of that
 * connection asks a root node for the slot table and waits on it while it
 * does not answer.
 *
 * Failed before the fix (2 of 2 here): the new connection kept the user's
 * root nodes, so it asked the silent node only, hung until the 10 s open
 * deadline, again at each try ("could not open a read connection: trying
 * again"), and the sink never delivered the event added on the promoted
 * replica while the reader did. With three root nodes the same hang came one
 * attempt in three: clusterFailoverReads failed so in a clean-clone CI run.
 * Now the new connection discovers through the masters the user's client
 * knows and the other root nodes, never the node found silent (rootNodes.ts).
 */
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisClient, Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisCluster, rawCommandBulk, waitReplicated } from './support/redisCluster.js';
import { type RedisServer, rawCommand } from './support/redisServer.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start(3, { synced: true });
}, 60_000);
afterAll(() => cluster?.stop());

describe('a silent root node (node-redis)', () => {
  it("a sink's read connection opened again after the failover does not ask the silent node", async () => {
    // A stream whose slot's master has a replica, and a client with that master as its only root node.
    let name = uniqueName('silentroot');
    let master = await cluster.masterOf(slotOf(`pulse:stream:${name}`));
    while (!(await rawCommandBulk(master.port, 'INFO replication')).includes('connected_slaves:1')) {
      name = uniqueName('silentroot');
      master = await cluster.masterOf(slotOf(`pulse:stream:${name}`));
    }
    const redis = createCluster({
      rootNodes: [{ url: `redis://127.0.0.1:${master.port}` }],
      defaults: { socket: { socketTimeout: 3000, reconnectStrategy: (n: number) => Math.min(n * 50, 500) } },
    });
    redis.on('error', () => {});
    await redis.connect();
    const { logger, lines } = recordingLogger();
    const s = new Stream(name, redis as unknown as RedisClient, { maxLen: 0, logger });
    const sink = await s.newSink('g', { blockMs: 200, ackGracePeriodMs: 1000 });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 200 });
    const bySink: string[] = [];
    const byReader: string[] = [];
    const consumers = [
      (async () => {
        for await (const ev of sink) {
          bySink.push(ev.id);
          ev.ack().catch(() => {});
        }
      })(),
      (async () => {
        for await (const ev of reader) byReader.push(ev.id);
      })(),
    ];
    let paused: RedisServer | undefined;
    try {
      await s.add('e', 'a0');
      await waitFor(() => bySink.length >= 1 && byReader.length >= 1, { timeout: 10_000, what: 'a0 delivered' });
      const m = master;
      const replica = await waitFor(() => cluster.replicaOf(m), { timeout: 20_000, what: "the master's replica" });
      // The sink's read of this idle slot blocks long on the master: wait until it is out.
      await waitFor(
        async () =>
          (await rawCommandBulk(m.port, 'CLIENT LIST'))
            .split('\n')
            .some((l) => / cmd=xreadgroup /.test(l) && / flags=\S*b/.test(l)),
        { timeout: 10_000, what: 'the sink blocked on the master' },
      );
      await waitReplicated(master);
      // The master goes silent and its replica takes over.
      master.pause();
      paused = master;
      await rawCommand(replica.port, 'CLUSTER FAILOVER TAKEOVER');
      await waitFor(async () => (await rawCommandBulk(replica.port, 'INFO replication')).includes('role:master'), {
        timeout: 20_000,
        interval: 100,
        what: 'the replica promoted',
      });
      const id = await rawCommand(replica.port, `XADD ${s.key} * n e p b0`, 2000, true);
      await waitFor(() => byReader.includes(id), { timeout: 25_000, what: 'b0 read by the reader' });
      await waitFor(() => bySink.includes(id), { timeout: 25_000, what: 'b0 delivered by the sink' }).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}: ${lines.map((l) => `${l.level} ${String(l.msg)}`).join(' | ')}`);
      });
      expect(lines.some((l) => l.msg?.startsWith('a read blocked on a node that no longer serves'))).toBe(true);
      expect(lines.some((l) => l.msg?.startsWith('could not open a read connection'))).toBe(false);
    } finally {
      await within(Promise.all([sink.close(), reader.close()]), 20_000, 'close').catch(() => {});
      paused?.resume();
      await Promise.all(consumers).catch(() => {});
      redis.destroy();
    }
  }, 120_000);
});
