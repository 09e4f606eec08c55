/**
 * A cluster client's connections to its nodes, as blocking reads need them:
 * the connection that carries the commands for a key (to the master of its
 * slot), the connection to a node by address, and the client IDs of those
 * connections, so that CLIENT UNBLOCK can end a read blocked on one of them
 * (`OwnedConnection.readyUnblock` in connection.ts; why a sink's reads block
 * long on a cluster: `IDLE_SLOT_BLOCK_MS` in loops.ts). A cluster client routes
 * only commands with keys: these reach a node with a command without keys.
 */
import { PulseError } from '../errors.js';
import { monotonicNow } from './clock.js';
import type { Arg } from './command.js';
import { isRetryable } from './redisErrors.js';
import { slotOf } from './slot.js';

/** A cluster client's connection to one node: what CLIENT ID and CLIENT UNBLOCK need of it. */
export interface NodeLink {
  /** The client object of that connection (a new one after it was replaced). */
  readonly target: object;
  /** The node's `host:port`, as the cluster client spells it. */
  readonly address: string;
  send(args: readonly Arg[]): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** What ends a blocked read: the client ID of its connection, and on a cluster the address of the node it blocks on. */
export interface UnblockTarget {
  readonly id: number;
  readonly node: string | undefined;
  /** A key the read is for: routes a command there, for a client that does not know `node` yet. */
  readonly key?: string;
}

/** Sends a command without keys to one node of a cluster. */
export interface NodeRouting {
  /**
   * To the node at `address` (`host:port`); on a single node, to it. A
   * client that does not know that node yet (a replica just promoted) first
   * sends a command for `key` there, whose redirection teaches it.
   */
  sendToNode(address: string, args: readonly Arg[], key?: string): Promise<unknown>;
}

/** A cluster client's node connections: the master of `key`'s slot (undefined until the slot table is known), or the node at `address`. */
export interface ClusterLinks {
  nodeOf(key: string): Promise<NodeLink | undefined>;
  nodeAt(address: string): Promise<NodeLink | undefined>;
}

/** A node connection of either client: events, and its options (ioredis). */
interface NodeClient {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly options?: Record<string, unknown>;
}

/** How to send a command on a node connection. */
type Send<N> = (node: N, args: readonly Arg[]) => Promise<unknown>;

/** What `ioLinks` reads of an ioredis Cluster: its slot table (node addresses, master first) and its node connections. */
interface IoClusterNodes<N> {
  readonly slots?: ReadonlyArray<readonly string[] | undefined>;
  nodes(role: 'all'): N[];
}

/** The node connections of an ioredis Cluster (node keys are `host:port`, as ioredis spells them). */
export function ioLinks<N extends NodeClient>(cluster: unknown, send: Send<N>): ClusterLinks {
  const c = cluster as IoClusterNodes<N>;
  const at = (address: string | undefined): NodeLink | undefined => {
    if (address === undefined) return undefined;
    const node = c.nodes('all').find((n) => `${n.options?.host ?? '127.0.0.1'}:${n.options?.port ?? 6379}` === address);
    return node && { target: node, address, send: (args) => send(node, args), on: (ev, fn) => node.on(ev, fn) };
  };
  return {
    nodeOf: async (key) => at(c.slots?.[slotOf(key)]?.[0]),
    nodeAt: async (address) => at(address),
  };
}

/** A node of a node-redis cluster's slot table. */
interface NodeRedisNode {
  readonly address: string;
}

/** What `nodeRedisLinks` reads of a node-redis cluster. */
interface NodeRedisClusterNodes<N> {
  readonly slots?: ReadonlyArray<{ readonly master: NodeRedisNode } | undefined>;
  readonly masters?: readonly NodeRedisNode[];
  /** Masters and replicas by address (node-redis 5). */
  readonly nodeByAddress?: ReadonlyMap<string, NodeRedisNode>;
  nodeClient(node: NodeRedisNode): N | Promise<N>;
}

/** The node connections of a node-redis cluster. */
export function nodeRedisLinks<N extends NodeClient>(cluster: unknown, send: Send<N>): ClusterLinks {
  const c = cluster as NodeRedisClusterNodes<N>;
  const link = async (node: NodeRedisNode | undefined): Promise<NodeLink | undefined> => {
    if (!node) return undefined;
    const client = await c.nodeClient(node);
    return { target: client, address: node.address, send: (args) => send(client, args), on: (ev, fn) => client.on(ev, fn) };
  };
  return {
    nodeOf: (key) => link(c.slots?.[slotOf(key)]?.master),
    nodeAt: (address) => link(c.nodeByAddress?.get(address) ?? c.masters?.find((m) => m.address === address)),
  };
}

/** How long, after CLIENT UNBLOCK was refused, no read is readied to be unblocked (each blocks `blockMs`). */
export const UNBLOCK_RECHECK_MS = 10 * 60_000;

/**
 * Whether CLIENT UNBLOCK is refused, shared by every connection of a client
 * (an ACL is per user, and the library's connections are the user's): when
 * one finds it refused, every other one stops readying long reads, instead of
 * each finding out with a read it can no longer end.
 */
export class UnblockPermission {
  /** When it was last found refused (0: never). */
  refusedAt = 0;
  /** Counts refusals: a connection whose IDs were checked before the last one checks again. */
  epoch = 0;

  refused(): void {
    this.refusedAt = monotonicNow();
    this.epoch++;
  }

  /** Refused recently: readying is not even tried (it costs two commands per read). */
  get recentlyRefused(): boolean {
    return this.refusedAt > 0 && monotonicNow() - this.refusedAt < UNBLOCK_RECHECK_MS;
  }
}

/**
 * On a cluster, the client IDs of a connection's links to the nodes (see
 * `OwnedConnection.readyUnblock`): learned before a blocking read, with a
 * check that CLIENT UNBLOCK is allowed there, and forgotten when the link
 * connects again (a new connection, a new ID) or the permission was found
 * refused since (`permission`, shared by the client's connections).
 */
export function nodeIds(
  { nodeOf, nodeAt }: ClusterLinks,
  route: (args: readonly Arg[], key: string) => Promise<unknown>,
  permission: UnblockPermission,
) {
  let ids = new WeakMap<object, number>();
  let epoch = permission.epoch;
  const watched = new WeakSet<object>();
  let last: { link: NodeLink; key: string } | undefined;
  return {
    async ready(key: string): Promise<boolean> {
      last = undefined;
      if (permission.recentlyRefused) return false;
      if (epoch !== permission.epoch) {
        ids = new WeakMap();
        epoch = permission.epoch;
      }
      try {
        const link = await nodeOf(key);
        if (!link) return false;
        const { target } = link;
        if (!watched.has(target)) {
          watched.add(target);
          link.on('ready', () => ids.delete(target));
        }
        if (!ids.has(target)) {
          const id = Number(await link.send(['CLIENT', 'ID']));
          // Whether this user may end a blocked read at all (an ACL may deny
          // CLIENT UNBLOCK): no client has ID 0, so this ends nothing.
          await link.send(['CLIENT', 'UNBLOCK', 0]);
          ids.set(target, id);
        }
        last = { link, key };
        return true;
      } catch (err) {
        // Refused (NOPERM): for every connection of the client. Failed: the
        // read that follows meets the same trouble itself (then retried).
        // Either way this read blocks `blockMs` only.
        if (!isRetryable(err)) permission.refused();
        return false;
      }
    },
    async target(): Promise<UnblockTarget | undefined> {
      if (!last) return undefined;
      const { link, key } = last;
      const id = ids.get(link.target);
      const now = await nodeOf(key).catch(() => undefined);
      // The slot moved or the link connected again: Redis ended that read
      // itself (UNBLOCKED, MOVED, a closed connection), or is about to.
      return id !== undefined && now?.target === link.target ? { id, node: link.address, key } : undefined;
    },
    /** Where the last readied read was sent, and its key (see `OwnedConnection.readNode`). */
    readNode(): { node: string; key: string } | undefined {
      return last && { node: last.link.address, key: last.key };
    },
    /** CLIENT UNBLOCK was refused (an ACL changed): no connection of the client readies long reads for a while. */
    refused(): void {
      permission.refused();
    },
    async send(address: string, args: readonly Arg[], key?: string): Promise<unknown> {
      let link = await nodeAt(address);
      if (!link && key !== undefined) {
        await route(['TYPE', key], key).catch(() => undefined);
        link = await nodeAt(address);
      }
      if (!link) throw new PulseError(`no connection to cluster node ${address}`);
      return link.send(args);
    },
  };
}
