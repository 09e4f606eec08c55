/**
 * A sink's reads through a Redis Cluster failover (outside review W, both
 * clients).
 *
 * A silent master (frozen, partitioned: no reset): a sink reads an idle slot
 * with a blocking read of 30 minutes (`IDLE_SLOT_BLOCK_MS`), on a connection
 * whose socket waits as long. Redis cannot end it on a node that does not
 * run, and nothing else did, so the sink delivered nothing added on the
 * promoted replica for 30 minutes (failed 4/4 before: the reader read the
 * event in 3-9 s, the sink never in 25 s). Now the read's node is watched
 * against the sink's control connection's view of the slot (nodeWatch.ts),
 * and the read starts anew on a new connection once another node is
 * confirmed to serve it.
 *
 * That new connection (node-redis) asked a root node, picked at random, for
 * the slot table, and waited on it while it did not answer: the silent node
 * was one of three root nodes, so an attempt hung until the 10 s open
 * deadline one time in three ("could not open a read connection: trying
 * again"; a clean-clone CI run on 2026-12-07 timed out here), and every time
 * with the silent node as the client's only root node (that case below
 * failed 2 of 2). Now it discovers through the masters the user's client
 * knows and the other root nodes, never the node found silent (rootNodes.ts).
 *
 * A killed master whose replica had everything (WAIT 1): node-redis counted
 * a nacked event "trimmed before this sink read them" (counters.lost 1)
 * though nothing was trimmed and the event came back: its cluster client
 * reconnects a node's connection without a 'ready' event, so the check
 * trusted the promoted replica's entries-read, which Redis 7.0 does not
 * replicate exactly (failed 4/4 for node-redis before). A read failing
 * without a reply now counts as a node change: the next check resyncs.
 *
 * A failover to a replica that missed acknowledged adds (review W, defect
 * 2): events the sink read and gave back (its loop stalled a grace period)
 * were lost with the old master, pending for no one, and nothing said so
 * (failed 4 of 5 runs before, 8 of 10 client cases). Now the instance that
 * let them go says how many, with their IDs, as maybe lost (letGoRollback
 * has the same on a single node, and for nacked events).
 */
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Logger, type RedisClient, Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, type ClientKind, recordingLogger, stays, uniqueName, waitFor, within } from './support/clients.js';
import { connectCluster, consumeSinkAndReader } from './support/clusterClients.js';
import { RedisCluster, rawCommandBulk, waitReplicated } from './support/redisCluster.js';
import { type RedisServer, rawCommand } from './support/redisServer.js';

/** The master of `slot` as node `port` sees it (not asking the frozen node). */
async function masterVia(port: number, slot: number): Promise<number | undefined> {
  const info = await rawCommandBulk(port, 'CLUSTER NODES');
  for (const line of info.split('\n')) {
    const parts = line.split(' ');
    if (!parts[2]?.includes('master') || parts[2].includes('fail')) continue;
    for (const range of parts.slice(8)) {
      const [a, b] = range.split('-').map(Number);
      if (a !== undefined && slot >= a && slot <= (b ?? a)) return Number(parts[1]?.split(':')[1]?.split('@')[0]);
    }
  }
  return undefined;
}

/**
 * A cluster client with socketTimeout 3 s: the documented way to find a silent connection dead.
 * `roots`: its root nodes (default: the cluster's).
 */
async function client(
  kind: ClientKind,
  cluster: RedisCluster,
  roots: Array<{ host: string; port: number }> = cluster.rootNodes,
): Promise<{ redis: RedisClient; close(): void }> {
  if (kind === 'ioredis') {
    const redis = new Cluster(roots, { lazyConnect: true, redisOptions: { socketTimeout: 3000 } });
    redis.on('error', () => {});
    await redis.connect();
    return { redis: redis as unknown as RedisClient, close: () => redis.disconnect() };
  }
  const redis = createCluster({
    rootNodes: roots.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
    defaults: { socket: { socketTimeout: 3000, reconnectStrategy: (n: number) => Math.min(n * 50, 500) } },
  });
  redis.on('error', () => {});
  await redis.connect();
  return { redis: redis as unknown as RedisClient, close: () => redis.destroy() };
}

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

/** A stream name whose slot's master has a replica (an earlier failover may have left a master without one). */
async function nameOnReplicatedMaster(prefix: string): Promise<string> {
  for (;;) {
    const name = uniqueName(prefix);
    const master = await cluster.masterOf(slotOf(`pulse:stream:${name}`));
    if ((await rawCommandBulk(master.port, 'INFO replication')).includes('connected_slaves:1')) return name;
  }
}

/**
 * An idle sink's read blocked on the master of its stream's slot, which goes silent while its replica
 * takes over: the sink delivers what is added on the promoted replica, as a reader does.
 * `onlyRoot`: that master is the client's only root node.
 */
async function silentMaster(kind: ClientKind, onlyRoot: boolean): Promise<void> {
  const name = await nameOnReplicatedMaster('frz');
  const first = await cluster.masterOf(slotOf(`pulse:stream:${name}`));
  const c = await client(kind, cluster, onlyRoot ? [{ host: '127.0.0.1', port: first.port }] : cluster.rootNodes);
  const { logger, lines } = recordingLogger();
  const s = new Stream(name, c.redis, { maxLen: 0, logger });
  const sink = await s.newSink('g', { blockMs: 200, ackGracePeriodMs: 1000 });
  const reader = await s.newReader({ startAt: 'oldest', blockMs: 200 });
  const { bySink, byReader, done } = consumeSinkAndReader(sink, reader);
  let master: RedisServer | undefined;
  try {
    await s.add('e', 'a0');
    await waitFor(() => bySink.length >= 1 && byReader.length >= 1, { timeout: 10_000, what: 'a0 delivered' });
    master = await cluster.masterOf(slotOf(s.key));
    // On a fresh cluster, CLUSTER NODES may take a moment to show the replica's link as connected.
    const m0 = master;
    const replica = await waitFor(() => cluster.replicaOf(m0), { timeout: 20_000, what: "the master's replica" });
    // The sink's read of this now idle slot blocks long (30 min) on the master: wait until it is out.
    const m = master;
    await waitFor(
      async () =>
        (await rawCommandBulk(m.port, 'CLIENT LIST'))
          .split('\n')
          .some((l) => / cmd=xreadgroup /.test(l) && / flags=\S*b/.test(l)),
      { timeout: 10_000, what: 'the sink blocked on the master' },
    );
    // The replica has everything (the stream, its group): a failover that loses nothing.
    const r = replica;
    await waitFor(async () => (await rawCommandBulk(r.port, 'INFO replication')).includes('master_link_status:up'), {
      timeout: 20_000,
      what: 'the replica in sync',
    });
    await waitReplicated(master);
    // The master goes silent (a frozen or partitioned host) and its replica takes over.
    master.pause();
    await rawCommand(replica.port, 'CLUSTER FAILOVER TAKEOVER');
    const promoted = await waitFor(
      async () => {
        const p = await masterVia(replica.port, slotOf(s.key)).catch(() => undefined);
        return p === replica.port ? p : undefined;
      },
      { timeout: 20_000, interval: 100, what: 'the replica promoted' },
    );
    // The promoted replica has the sink's group: the failover lost nothing.
    expect(await rawCommand(promoted, `XINFO GROUPS ${s.key}`, 2000, true)).toMatch(/^\*1/);
    const id = await rawCommand(promoted, `XADD ${s.key} * n e p b0`, 2000, true);
    // The reader finds its silent connection dead (socketTimeout) and reads on the new master.
    await waitFor(() => byReader.includes(id), { timeout: 25_000, what: 'b0 read by the reader' });
    // So does the sink: its read starts anew on the promoted replica, and it says why.
    await waitFor(() => bySink.includes(id), { timeout: 25_000, what: 'b0 delivered by the sink' });
    expect(lines.some((l) => l.level === 'warn' && l.msg?.startsWith('a read blocked on a node that no longer serves'))).toBe(
      true,
    );
    // Never asked the silent node for the slot table (it would hang until the open deadline).
    if (onlyRoot) expect(lines.some((l) => l.msg?.startsWith('could not open a read connection'))).toBe(false);
  } finally {
    await within(Promise.all([sink.close(), reader.close()]), 20_000, 'close').catch(() => {});
    master?.resume();
    await done.catch(() => {});
    c.close();
  }
}

describe.each(CLIENT_KINDS)('a silent old master after a failover (%s)', (kind) => {
  it('an idle sink reads the events added on the promoted replica, as a reader does', () => silentMaster(kind, false), 120_000);
});

describe('a silent old master after a failover, the only root node of a node-redis client', () => {
  it(
    "the sink's read connection opened again does not ask it for the slot table",
    () => silentMaster('node-redis', true),
    120_000,
  );
});

describe.each(CLIENT_KINDS)('a failover that lost nothing (%s)', (kind) => {
  it('counts nothing lost; the nacked event comes back once, after its delay', async () => {
    const c = await connectCluster(kind, cluster);
    const { logger, lines } = recordingLogger();
    const name = await nameOnReplicatedMaster('nd');
    const s = new Stream(name, c.redis, { maxLen: 0, logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 200, ackGracePeriodMs: 1000 });
    const got: Array<{ id: string; n: number }> = [];
    let nacked = false;
    const consumer = (async () => {
      for await (const ev of sink) {
        got.push({ id: ev.id, n: ev.deliveryCount });
        if (ev.deliveryCount === 1) {
          // (A nack failing here is not this defect: the event comes back after the grace period instead.)
          await ev.nack({ delayMs: 5000 }).catch(() => {});
          nacked = true;
        } else ev.ack().catch(() => {});
      }
    })();
    let master: RedisServer | undefined;
    try {
      const id = await s.add('e', 'x');
      await waitFor(() => nacked, { timeout: 10_000, what: 'nacked' });
      master = await cluster.masterOf(slotOf(s.key));
      // The replica has everything: nothing can be lost by this failover. Waited for: under load a
      // replica still syncing after the last test's restart did not answer one WAIT within 5 s.
      await waitReplicated(master);
      await master.kill('SIGKILL');
      await cluster.waitHealthy();
      // What the sink said, with what it delivered, when any of this fails (a failover's timing varies).
      const said = () =>
        `delivered ${JSON.stringify(got)}\n${lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`).join('\n')}`;
      try {
        await waitFor(() => got.filter((g) => g.id === id).length >= 2, { timeout: 20_000, what: 'the nacked event back' });
        expect(got.map((g) => g.n)).toEqual([1, 2]);
        // Nothing was trimmed (maxLen 0) and the event was delivered: no loss counted, none said. The
        // sink's keep-alive checks run every grace period / 4 (250 ms): 1.5 s is six of them after the
        // checked read that brought the event back.
        await stays(() => sink.counters.lost === 0, 1500, 'no loss counted');
        expect(lines.filter((l) => /trimmed|lost/i.test(String(l.msg)) && !/could not check/.test(String(l.msg)))).toEqual([]);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${said()}`);
      }
    } finally {
      await within(sink.close(), 10_000, 'close').catch(() => {});
      if (master) await master.restart().catch(() => {});
      await consumer.catch(() => {});
      await s.destroy().catch(() => {});
      await c.close();
      await cluster.waitHealthy(60_000).catch(() => {});
    }
  }, 120_000);
});

describe.each(CLIENT_KINDS)('a failover to a replica that missed acknowledged adds (%s)', (kind) => {
  it('the sink says the events it read, gave back and Redis then lost', async () => {
    const c = await connectCluster(kind, cluster);
    const { logger, lines } = recordingLogger();
    const s = new Stream(await nameOnReplicatedMaster('bh'), c.redis, { maxLen: 0, logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 200, ackGracePeriodMs: 1000 });
    const handled = new Set<string>();
    let open = true;
    const consumer = (async () => {
      for await (const ev of sink) {
        // A slow handler: the loop takes nothing for a grace period, the sink gives its buffer back.
        await waitFor(() => open, { timeout: 60_000, what: 'handler released' });
        handled.add(ev.id);
        ev.ack().catch(() => {});
      }
    })();
    let master: RedisServer | undefined;
    let replica: RedisServer | undefined;
    try {
      const before: string[] = [];
      for (let i = 0; i < 10; i++) before.push(await s.add('e', `a${i}`));
      await waitFor(() => before.every((id) => handled.has(id)), { timeout: 10_000, what: 'a* handled' });
      master = await cluster.masterOf(slotOf(s.key));
      const m = master;
      // After the earlier tests' failovers a node may still be (re)joining as a replica: waited
      // for, where asking once met "no replica" in a full run.
      replica = await waitFor(() => cluster.replicaOf(m), { timeout: 20_000, what: 'a replica of the master' });
      await waitReplicated(master);
      // Replication stops here (the replica cannot authenticate again): what follows lives on the master only.
      await rawCommand(replica.port, 'CONFIG SET masteruser nosuchuser');
      await rawCommand(replica.port, 'CONFIG SET masterauth nopass');
      await rawCommand(master.port, 'CLIENT KILL TYPE replica');
      const r = replica;
      await waitFor(async () => (await rawCommandBulk(r.port, 'INFO replication')).includes('master_link_status:down'), {
        timeout: 10_000,
        what: 'replication cut',
      });
      open = false;
      const lostAdds: string[] = [];
      for (let i = 0; i < 10; i++) lostAdds.push(await s.add('e', `b${i}`));
      // The sink reads them all: one in the stuck handler, nine given back after a grace period.
      await waitFor(() => lines.some((l) => /took no event for a grace period/.test(String(l.msg))), {
        timeout: 10_000,
        what: 'the buffer given back',
      });
      await master.kill('SIGKILL');
      await rawCommand(replica.port, 'CLUSTER FAILOVER TAKEOVER');
      await waitFor(async () => (await rawCommandBulk(r.port, 'INFO replication')).includes('role:master'), {
        timeout: 10_000,
        what: 'the replica promoted',
      });
      // The promoted replica lacks every b* entry: lost by Redis, acknowledged to the producer.
      expect(await rawCommand(replica.port, `XLEN ${s.key}`)).toBe(':10');
      open = true;
      const after: string[] = [];
      for (let i = 0; i < 10; i++)
        after.push(await waitFor(() => s.add('e', `c${i}`).catch(() => undefined), { timeout: 15_000, what: `add c${i}` }));
      await waitFor(() => after.every((id) => handled.has(id)), { timeout: 20_000, what: 'c* handled' });
      expect(lostAdds.filter((id) => !handled.has(id))).toHaveLength(9);
      // Said by the sink with their number (given back before the failover: another instance could
      // have handled them), or counted lost (a give-back the failover interrupted found them gone
      // when retried: this instance still held them).
      const said = () =>
        lines.reduce(
          (n, l) => n + Number(/: (\d+) event\(s\) this instance read and let go of/.exec(String(l.msg))?.[1] ?? 0),
          0,
        );
      // Exactly nine: a clean-clone CI run once counted ten, b0 among them (claimed again by this
      // instance while the stuck handler held it, then given back with the released buffer:
      // test/forAwaitInHandGivenBack.test.ts).
      await waitFor(() => said() + sink.counters.lost >= 9, { timeout: 10_000, what: 'the 9 events said or counted' }).catch(
        (e: unknown) => {
          throw new Error(
            `${(e as Error).message}: said ${said()}, counted ${sink.counters.lost}, b* ${JSON.stringify(lostAdds)}; log:\n${lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`).join('\n')}`,
          );
        },
      );
      // The IDs of the lines that say or count them (not those of the release or of other warnings).
      const ids = lines
        .filter((l) => /let go of|Redis lost/.test(String(l.msg)))
        .flatMap((l) => (l.obj as { ids?: string[] }).ids ?? []);
      const log = `said ${said()}, counted ${sink.counters.lost}, ids ${JSON.stringify(ids)}, b0 ${lostAdds[0]}; lines with ids: ${lines
        .filter((l) => (l.obj as { ids?: string[] }).ids)
        .map((l) => String(l.msg))
        .join(' | ')}`;
      expect(said() + sink.counters.lost, log).toBe(9);
      expect(ids, log).not.toContain(lostAdds.find((id) => handled.has(id)));
    } finally {
      open = true;
      await within(sink.close(), 20_000, 'close').catch(() => {});
      // The promoted replica may serve as a replica again later: it authenticates as before.
      for (const setting of ['masteruser ""', 'masterauth ""'])
        if (replica) await rawCommand(replica.port, `CONFIG SET ${setting}`).catch(() => {});
      if (master) await master.restart().catch(() => {});
      await consumer.catch(() => {});
      await s.destroy().catch(() => {});
      await c.close();
      await cluster.waitHealthy(60_000).catch(() => {});
    }
  }, 180_000);
});
