/**
 * A real Redis Cluster of local `redis-server` processes (masters with one
 * replica each), created with `redis-cli --cluster create`, torn down by pid.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisServer, rawCommand } from './redisServer.js';

const run = promisify(execFile);

export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  /**
   * Starts `masters` masters with one replica each; resolves when every node reports cluster_state:ok,
   * and with `synced`, once every replica has its master's data too (link up: Redis' diskless sync
   * starts 5 s after the replica asks). A CLUSTER FAILOVER then takes ~100 ms, as on a settled
   * cluster, where one in the first seconds waited for the replica's first sync.
   */
  static async start(masters = 3, { synced = false }: { synced?: boolean } = {}): Promise<RedisCluster> {
    // A create that fails is tried again on new nodes: in a clean-clone CI run `redis-cli --cluster
    // create` failed once for cluster.test.ts (its output, which says why, was not kept then).
    for (let attempt = 1; ; attempt++) {
      const nodes: RedisServer[] = [];
      try {
        for (let i = 0; i < masters * 2; i++) nodes.push(await startNode());
        await run(
          'redis-cli',
          ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'],
          { timeout: 60_000 },
        ).catch((err: unknown) => {
          const out = String((err as { stdout?: unknown }).stdout ?? '')
            .trim()
            .split('\n')
            .slice(-5)
            .join(' | ');
          throw new Error(`${(err as Error).message.trim()}: ${out}`);
        });
        const cluster = new RedisCluster(nodes);
        await cluster.waitHealthy();
        if (synced) await cluster.waitReplicasInSync();
        return cluster;
      } catch (err) {
        await Promise.all(nodes.map((n) => n.stop()));
        if (attempt >= 3) throw err;
        console.warn(`redis cluster start failed (attempt ${attempt} of 3), starting new nodes: ${(err as Error).message}`);
      }
    }
  }

  /** Waits until every live node says cluster_state:ok and all 16384 slots are covered. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const n of this.nodes) {
        if (n.pid === undefined || !n.running) continue;
        try {
          const info = await rawCommandBulk(n.port, 'CLUSTER INFO');
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) ok = false;
        } catch {
          ok = false;
        }
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error('cluster did not become healthy');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits until every live replica says master_link_status:up (its first sync done). */
  async waitReplicasInSync(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const n of this.nodes) {
        if (!n.running) continue;
        const info = await rawCommandBulk(n.port, 'INFO replication').catch(() => '');
        if (info === '' || (info.includes('role:slave') && !info.includes('master_link_status:up'))) ok = false;
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error('the replicas did not sync with their masters');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** `host:port` startup nodes. */
  get rootNodes(): Array<{ host: string; port: number }> {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** The node that serves `slot` as master now. */
  async masterOf(slot: number): Promise<RedisServer> {
    for (const n of this.nodes) {
      if (!n.running) continue;
      const nodesInfo = await rawCommandBulk(n.port, 'CLUSTER NODES');
      for (const line of nodesInfo.split('\n')) {
        const parts = line.split(' ');
        if (!parts[2]?.includes('master') || parts[2].includes('fail')) continue;
        const port = Number(parts[1]?.split(':')[1]?.split('@')[0]);
        for (const range of parts.slice(8)) {
          const [a, b] = range.split('-').map(Number);
          if (a !== undefined && slot >= a && slot <= (b ?? a)) {
            const node = this.nodes.find((x) => x.port === port);
            if (node) return node;
          }
        }
      }
      break;
    }
    throw new Error(`no master for slot ${slot}`);
  }

  /** The node ID of a node (`CLUSTER MYID`). */
  async idOf(node: RedisServer): Promise<string> {
    return rawCommandBulk(node.port, 'CLUSTER MYID');
  }

  /** The live masters. */
  async masters(): Promise<RedisServer[]> {
    const out: RedisServer[] = [];
    for (const n of this.nodes) {
      if (!n.running) continue;
      const role = await rawCommandBulk(n.port, 'INFO replication');
      if (role.includes('role:master')) out.push(n);
    }
    return out;
  }

  /** The node replicating `master`, if one is connected to it. */
  async replicaOf(master: RedisServer): Promise<RedisServer | undefined> {
    const id = await this.idOf(master);
    const nodes = await rawCommandBulk(master.port, 'CLUSTER NODES');
    for (const line of nodes.split('\n')) {
      const f = line.split(' ');
      if (!f[2]?.includes('slave') || f[3] !== id || f[7] !== 'connected' || f[2].includes('fail')) continue;
      const port = Number(f[1]?.split(':')[1]?.split('@')[0]);
      const node = this.nodes.find((n) => n.port === port && n.running);
      if (node) return node;
    }
    return undefined;
  }

  /**
   * Makes the replica of `slot`'s master take over (`CLUSTER FAILOVER`: the
   * master pauses writes until the replica has caught up, so nothing it
   * acknowledged is lost) and resolves to it. Redis gives a manual failover
   * 5 s, then lets the master take writes again: a replica elected late
   * anyway (votes delayed on a loaded machine) drops what the master took
   * meanwhile, acknowledged or not. `clean` is false when the failover came
   * near that limit or had to be asked again (three tries in all).
   */
  async failover(slot: number): Promise<{ promoted: RedisServer; clean: boolean }> {
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      const replica = await this.replicaOf(await this.masterOf(slot));
      if (!replica) throw new Error(`no replica for the master of slot ${slot}`);
      const reply = await rawCommand(replica.port, 'CLUSTER FAILOVER');
      if (reply !== '+OK') throw new Error(`CLUSTER FAILOVER: ${reply}`);
      const deadline = Date.now() + 8000;
      while (Date.now() < deadline) {
        if ((await this.masterOf(slot).catch(() => undefined)) === replica) {
          return { promoted: replica, clean: attempt === 1 && Date.now() - t0 < MANUAL_FAILOVER_SAFE_MS };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      if (attempt === 3) throw new Error(`slot ${slot}: no failover after ${attempt} tries`);
    }
  }

  /** Moves one slot, with its keys, from its master to `to`, as resharding does. */
  async migrateSlot(slot: number, to: RedisServer): Promise<void> {
    const from = await this.masterOf(slot);
    if (from === to) return;
    const fromId = await this.idOf(from);
    const toId = await this.idOf(to);
    await rawCommand(to.port, `CLUSTER SETSLOT ${slot} IMPORTING ${fromId}`);
    await rawCommand(from.port, `CLUSTER SETSLOT ${slot} MIGRATING ${toId}`);
    for (;;) {
      const { stdout } = await run('redis-cli', ['-p', String(from.port), 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100']);
      const keys = stdout.split('\n').filter((k) => k.length > 0);
      if (keys.length === 0) break;
      await run('redis-cli', [
        '-p',
        String(from.port),
        'MIGRATE',
        '127.0.0.1',
        String(to.port),
        '',
        '0',
        '5000',
        'KEYS',
        ...keys,
      ]);
    }
    for (const n of await this.masters()) await rawCommand(n.port, `CLUSTER SETSLOT ${slot} NODE ${toId}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/**
 * One cluster node on a free port. A port free when picked can be taken
 * before the node binds it, or its cluster bus port (+10000) can be in use
 * (seen in CI: the node exits at start): `RedisServer.start` then tries
 * another free port, with arguments made for it.
 */
function startNode(): Promise<RedisServer> {
  return RedisServer.start({
    args: (port) => [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
      '--cluster-node-timeout',
      '1000',
      '--appendonly',
      'yes',
    ],
  });
}

/** Redis aborts a manual failover after 5 s (CLUSTER_MF_TIMEOUT): one that took this long may have come after. */
const MANUAL_FAILOVER_SAFE_MS = 4000;

/** Reads a bulk-string reply (CLUSTER INFO/NODES) over a raw socket. */
export async function rawCommandBulk(port: number, line: string): Promise<string> {
  return rawCommand(port, line, 2000, true);
}

/**
 * Waits until `master`'s replica has acknowledged every write so far (`WAIT
 * 1`), asked again until `timeoutMs`: under load a replica still syncing
 * after an earlier test's restart let one `WAIT 1 5000` answer 0.
 */
export async function waitReplicated(master: RedisServer, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if ((await rawCommand(master.port, 'WAIT 1 2000', 3000)) === ':1') return;
    if (Date.now() > until)
      throw new Error(`the replica of ${master.port} did not acknowledge every write within ${timeoutMs} ms`);
  }
}
