/**
 * The driver of a node-redis client or cluster (v5 and later): bulk strings
 * as Buffers and maps as flat arrays through a type mapping, so replies look
 * like ioredis' to the rest of the library.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type Mergeable, TickBatcher } from './batcher.js';
import { monotonicNow } from './clock.js';
import { nodeRedisLinks, UnblockPermission } from './clusterLinks.js';
import type { Arg } from './command.js';
import { connectionName, OPEN_TIMEOUT_MS, type OwnedConnection, openWith, setupRejected } from './connection.js';
import { type Driver, oneByOne, ownSocketTimeout, rawTransaction } from './driverShared.js';
import { errorText, isErrorNamed, markUnsent, replyCode } from './redisErrors.js';
import { str } from './replies.js';
import { rootNodesAvoiding } from './rootNodes.js';
import { slotOf } from './slot.js';
import { UnwrittenTimeout } from './unwrittenTimeout.js';

interface NodeRedisLike {
  sendCommand(...args: unknown[]): Promise<unknown>;
  getNodeClientForKey(key: string): Promise<NodeRedisLike>;
  duplicate(overrides?: Record<string, unknown>): NodeRedisLike;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  options?: Record<string, unknown>;
  /** A cluster's options (`options` is a client's). */
  _options?: Record<string, unknown>;
  masters?: unknown;
  /** node-redis 6.3 and later: the client's or cluster's `keyPrefix` (see `checkNodeClient`). */
  readonly _keyPrefix?: unknown;
  /** A node-redis `createSentinel()` (see `checkNodeClient`). */
  getSentinelNode?: unknown;
  readonly isReady?: boolean;
  readonly isOpen?: boolean;
  /** The command options node-redis merges into each command of this client (or proxy). */
  readonly _commandOptions?: { readonly timeout?: unknown };
}

/** Has every method the library calls on a node-redis client (`NodeRedisClient`): others fail with a clear error, not a TypeError later. */
export function isNodeRedis(c: object): c is NodeRedisLike {
  const x = c as Partial<Record<keyof NodeRedisLike, unknown>>;
  return typeof x.sendCommand === 'function' && typeof x.duplicate === 'function' && typeof x.on === 'function';
}

// RESP type bytes: blob strings as Buffers, maps as flat arrays (like ioredis).
const BLOB_STRING = 36;
const MAP = 37;
const TYPE_MAPPING = { [BLOB_STRING]: Buffer, [MAP]: Array };
/** The library's own connections run without a per-command timeout: blocks outlive it, and it costs throughput. */
const OWN_OPTIONS = { typeMapping: TYPE_MAPPING, timeout: undefined };
/** With the client's own timeout, if it has one (node-redis 6: 5 s unless set). */
const USER_OPTIONS = { typeMapping: TYPE_MAPPING };

export class NodeRedisDriver implements Driver {
  readonly kind = 'node-redis';
  readonly isCluster: boolean;
  readonly #batcher: TickBatcher;
  readonly #publish: TickBatcher;
  /** Whether CLIENT UNBLOCK is refused, for all the library's connections of this client. */
  readonly #unblockPermission = new UnblockPermission();
  constructor(private readonly client: NodeRedisLike) {
    checkNodeClient(client);
    const cluster = 'masters' in client;
    this.isCluster = cluster;
    const unwritten = cluster ? undefined : new UnwrittenTimeout(client, TYPE_MAPPING);
    const one = (args: readonly Arg[], key: string | undefined): Promise<unknown> => {
      // Closed (close(), destroy(), never connected): node-redis refuses the
      // command at once, unwritten. Adds issued just before close() reach it
      // here, on the batcher's next tick, after it (outside review A).
      const closed = client.isOpen === false;
      return unsentMarked(send(args, key), closed, cluster ? CLUSTER_UNSENT_ERRORS : UNSENT_ERRORS);
    };
    const send = (args: readonly Arg[], key: string | undefined): Promise<unknown> => {
      const a = args.map(toNodeArg);
      if (cluster) return client.sendCommand(key, false, a, USER_OPTIONS);
      // node-redis' command timeout only covers a command waiting to be
      // written (it is dropped once written), and a connected client writes
      // what it is given on the next turn of the event loop. Enforcing it
      // costs an AbortSignal.timeout() and a listener per command, and those
      // signals live for the whole timeout: under steady traffic they reach
      // the old generation and their collection pauses the process (p99 from
      // add to handler at 5k events/s: 6-22 ms with it, 2.4-2.7 ms without;
      // BENCHMARKS.md). So a connected client gets the command without it; one
      // that is not (reconnecting, its commands queued) with it, as the user
      // set it up. A cluster's readiness says nothing of each node's: it
      // keeps the timeout. A command a ready client has not written when its
      // socket closes would then wait for the reconnection however long it
      // takes: `unwritten` bounds it by the user's timeout from the drop.
      if (client.isReady !== true) return client.sendCommand(a, USER_OPTIONS);
      const options = unwritten?.options();
      if (unwritten === undefined || options === undefined) return client.sendCommand(a, OWN_OPTIONS);
      return client.sendCommand(a, options).catch((err: unknown) => {
        throw unwritten.explain(err, options);
      });
    };
    this.#batcher = new TickBatcher(
      one,
      // Not multi().execAsPipeline(): it rejects the whole pipeline with the
      // first error and drops the other replies, so an add that succeeded
      // would be reported failed (and retried into a duplicate). Commands
      // sent in one tick leave in one socket write all the same; merged adds
      // and acks keep their number low.
      (cmds, key) => oneByOne(one, cmds, key),
      cluster ? slotOf : undefined,
    );
    // Adds on a cluster: one step per slot in flight (see TickBatcher).
    this.#publish = cluster ? new TickBatcher(one, (cmds, key) => oneByOne(one, cmds, key), slotOf, true) : this.#batcher;
  }

  closed(): string | undefined {
    return this.client.isOpen === false ? 'the node-redis client is not open (never connected, or closed)' : undefined;
  }

  send(args: readonly Arg[], key?: string): Promise<unknown> {
    return this.#batcher.send(args, key);
  }

  sendMergeable(merge: Mergeable, key: string): Promise<unknown> {
    return this.#publish.sendMergeable(merge, key);
  }

  /**
   * The database the user's client uses now, for a connection duplicated
   * from it. node-redis keeps the one `select()` chose in a private field,
   * and `duplicate()` copies the construction options (`database`): after a
   * `select(3)` the library's connections read database 0 while the client
   * wrote database 3 (outside review P). So Redis is asked (`CLIENT INFO`,
   * sent on the client after what it sent before, its SELECT included).
   * Refused (an ACL without it): undefined, the construction options stand,
   * and a warning says so. A connection error is thrown: the open fails.
   */
  async #selectedDb(logger: Logger): Promise<number | undefined> {
    try {
      const db = / db=(\d+)/.exec(str(await this.send(['CLIENT', 'INFO'])))?.[1];
      return db === undefined ? undefined : Number(db);
    } catch (err) {
      if (replyCode(err) === undefined) throw err;
      logger.warn(
        { err: errorText(err) },
        "CLIENT INFO refused: the library's connections use the database of the client's options, not one it may have SELECTed since",
      );
      return undefined;
    }
  }

  async openOwned(label: string, logger: Logger, blockMs?: number, avoid?: string): Promise<OwnedConnection> {
    const name = connectionName(label);
    const cluster = this.isCluster;
    // node-redis retries a failed first handshake forever (connect() never
    // settles): until the first connect succeeded, an error Redis replied
    // (a rejected handshake: ACL, max clients...) or the deadline ends it, and
    // connect() rejects with it. After that, reconnects go on: the library's
    // loops own the retry policy.
    let connected = false;
    let closed = false;
    const deadline = monotonicNow() + OPEN_TIMEOUT_MS;
    const reconnectStrategy = (retries: number, cause: unknown): number | Error | false => {
      // Closed: no attempt after a failed one (false stops node-redis' reconnecting).
      if (closed) return false;
      if (!connected && cause instanceof Error && (setupRejected(cause) || monotonicNow() >= deadline)) return cause;
      return Math.min(50 * 2 ** Math.min(retries, 6), 2000);
    };
    let dup: NodeRedisLike;
    if (cluster) {
      const opts = this.client._options ?? {};
      const defaults = (opts.defaults ?? {}) as Record<string, unknown>;
      const socket = (defaults.socket ?? {}) as Record<string, unknown>;
      const rootNodes = avoid === undefined ? undefined : rootNodesAvoiding(opts.rootNodes, this.client.masters, avoid);
      dup = this.client.duplicate({
        ...(rootNodes === undefined ? {} : { rootNodes }),
        commandOptions: OWN_OPTIONS,
        // A connection to the nodes this connection's commands go to, not to every master: each slot
        // group of a sink reads on a connection of its own, and a sink over 24 slots held 24 read
        // connections on each of 3 masters (outside review AL).
        minimizeConnections: true,
        defaults: {
          ...defaults,
          name,
          socket: { ...socket, reconnectStrategy, socketTimeout: ownSocketTimeout(socket.socketTimeout, blockMs) },
        },
      });
    } else {
      const socket = (this.client.options?.socket ?? {}) as Record<string, unknown>;
      const database = await this.#selectedDb(logger);
      dup = this.client.duplicate({
        ...(database === undefined ? {} : { database }),
        disableOfflineQueue: true,
        name,
        // socketTimeout destroys a socket idle for that long: lengthened by the
        // longest block (see ownSocketTimeout).
        socket: { ...socket, reconnectStrategy, socketTimeout: ownSocketTimeout(socket.socketTimeout, blockMs) },
        commandOptions: OWN_OPTIONS,
      });
    }
    return openWith(
      name,
      logger,
      {
        send: (args, key) => {
          const a = args.map(toNodeArg);
          return cluster ? dup.sendCommand(key, false, a, OWN_OPTIONS) : dup.sendCommand(a, OWN_OPTIONS);
        },
        transaction: async (cmds, key) => {
          // node-redis' multi().exec() decodes EXEC's reply without the type
          // mapping (payloads would come back as strings): send the
          // transaction as raw commands, queued in one tick on this
          // connection that nothing else uses.
          // On a cluster, commands are routed one by one (a MULTI could end
          // up elsewhere than its commands): use the key's node connection.
          const target = cluster && key !== undefined ? await dup.getNodeClientForKey(key) : dup;
          try {
            return await rawTransaction((args) => target.sendCommand(args.map(toNodeArg), OWN_OPTIONS), cmds);
          } catch (err) {
            // A moved slot: a routed command lets the cluster client learn the new owner before the retry.
            if (cluster && key !== undefined) await dup.sendCommand(key, true, ['TYPE', key], OWN_OPTIONS).catch(() => undefined);
            throw err;
          }
        },
        connect: async () => {
          await dup.connect();
          connected = true;
        },
        close: () => {
          closed = true;
          // A reconnect whose socket is being made when destroy() runs is not
          // stopped by it (node-redis 6 does not know that socket yet): it
          // completes afterwards and would stay open for ever. Its client is
          // destroyed again as soon as it connects. On a cluster those are
          // the node clients, forgotten by the cluster's destroy().
          const clients = cluster ? nodeClients(dup) : [dup];
          dup.destroy();
          for (const c of clients) {
            c.on('connect', () => c.destroy());
            c.on('ready', () => c.destroy());
          }
        },
        on: (ev, fn) => dup.on(ev, fn),
        links: cluster
          ? nodeRedisLinks<NodeRedisLike>(dup, (n, args) => n.sendCommand(args.map(toNodeArg), OWN_OPTIONS))
          : undefined,
        unblockPermission: this.#unblockPermission,
      },
      !cluster,
    );
  }
}

/**
 * Refuses, before any Redis call, the node-redis clients whose commands the
 * library cannot send as it means them (outside review M):
 * - a Sentinel (`createSentinel()`): its `sendCommand(isReadonly, args,
 *   options)` takes other arguments than a client's or a cluster's, so every
 *   command went out malformed ("ERR Protocol error"). Sentinel support is
 *   not offered: a client of the master works.
 * - a `keyPrefix` (node-redis 6.3): the library sends raw commands
 *   (`sendCommand`), which node-redis never prefixes, so two apps isolated by
 *   their prefixes shared `pulse:stream:<name>` and each received the other's
 *   events, as ioredis' `keyPrefix` would (ioredisDriver.ts).
 */
function checkNodeClient(client: NodeRedisLike): void {
  if (typeof client.getSentinelNode === 'function')
    throw new InvalidArgumentError(
      'a node-redis Sentinel client (createSentinel) is not supported: pass a node-redis client of the master (createClient, e.g. with the address sentinel.getMasterNode() gives)',
    );
  // `_keyPrefix` covers a client, a cluster and their proxies (withTypeMapping...); the options in case a version lacks it.
  const prefix = client._keyPrefix ?? client.options?.keyPrefix ?? client._options?.keyPrefix;
  if ((typeof prefix === 'string' || Buffer.isBuffer(prefix)) && prefix.length > 0)
    throw new InvalidArgumentError(
      'node-redis keyPrefix is not supported: pass a client without it (keys are pulse:stream:<name>; the library sends raw commands, which node-redis does not prefix)',
    );
}

/** The node clients of a node-redis cluster (masters, replicas and their pub/sub clients). */
function nodeClients(cluster: NodeRedisLike): NodeRedisLike[] {
  type Node = { client?: NodeRedisLike; pubSub?: { client?: NodeRedisLike } };
  const shape = cluster as { masters?: Node[]; replicas?: Node[] };
  const out: NodeRedisLike[] = [];
  for (const n of [...(shape.masters ?? []), ...(shape.replicas ?? [])]) {
    if (n.client) out.push(n.client);
    if (n.pubSub?.client) out.push(n.pubSub.client);
  }
  return out;
}

/**
 * node-redis' errors of commands it never wrote: `ClientOfflineError` (the
 * client refuses commands while disconnected, `disableOfflineQueue`) and
 * `TimeoutError` (the command timeout, which only runs while the command
 * waits to be written: node-redis drops it once written, commands-queue.js).
 * Not `DisconnectsClientError` (destroy()) nor socket errors: those reject
 * written commands too.
 */
const UNSENT_ERRORS = ['ClientOfflineError', 'TimeoutError'];
/**
 * On a cluster, not `TimeoutError`: during a slot migration node-redis waits
 * for commands in flight and then rejects those already written with a
 * `TimeoutError` too (cluster-slots.js, `flushOnTimeout`; outside review F).
 */
const CLUSTER_UNSENT_ERRORS = ['ClientOfflineError'];

/**
 * node-redis' rejection of a command when its queue holds
 * `commandsQueueMaxLength` commands already (commands-queue.js `addCommand`,
 * a plain `Error`): refused before it was queued, so never written, on a
 * client as on a cluster's node (outside review M: such adds said "outcome
 * unknown").
 */
const QUEUE_FULL = 'The queue is full';

/** `sent`, its rejection marked unsent (redisErrors.ts) when node-redis never wrote the command. */
function unsentMarked(sent: Promise<unknown>, closed: boolean, unsent: readonly string[]): Promise<unknown> {
  return sent.catch((err: unknown) => {
    // Each of these errors is made for this one command: marking it marks nothing else.
    if (typeof err === 'object' && err !== null && (closed || isErrorNamed(err, unsent) || queueFull(err))) markUnsent(err);
    throw err;
  });
}

/** True for node-redis' refusal of a command by its full queue (see {@link QUEUE_FULL}). */
function queueFull(err: object): boolean {
  return err instanceof Error && err.constructor === Error && err.message === QUEUE_FULL;
}

function toNodeArg(a: Arg): string | Buffer {
  return typeof a === 'number' ? String(a) : a;
}
