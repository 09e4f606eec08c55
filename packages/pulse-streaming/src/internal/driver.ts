import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type Mergeable, type Outcome, TickBatcher } from './batcher.js';
import { ioLinks, nodeRedisLinks, UnblockPermission } from './clusterLinks.js';
import { IoPublisher } from './ioPublisher.js';
import { isReplyError } from './redisErrors.js';
import type { Script } from './script.js';
import { slotOf } from './slot.js';

export type { Arg } from './command.js';

import type { Arg } from './command.js';
import { type Connection, connectionName, OPEN_TIMEOUT_MS, type OwnedConnection, openWith, setupRejected } from './connection.js';

export type { Connection, OwnedConnection } from './connection.js';

/** The user's client, as the library sees it. */
export interface Driver extends Connection {
  readonly kind: 'ioredis' | 'node-redis';
  readonly isCluster: boolean;
  /**
   * Sends an add: a command that may leave merged with others of its tag sent
   * in the same tick (see `Mergeable`). Never sent twice: one whose answer the
   * connection lost is rejected (ioredis: on a connection of the library's
   * own, see ioPublisher.ts).
   */
  sendMergeable(merge: Mergeable, key: string): Promise<unknown>;
  /** Opens a connection of the library's own, for blocking reads and background work. */
  openOwned(name: string, logger: Logger): Promise<OwnedConnection>;
  /** Why the user's client can send nothing (closed, or never connected), else undefined. */
  closed(): string | undefined;
}

/** Runs a script by SHA, loading it once when Redis does not know it yet. */
export async function evalScript(
  conn: Connection,
  script: Script,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  const tail = [keys.length, ...keys, ...args];
  try {
    return await conn.send(['EVALSHA', script.sha, ...tail], keys[0]);
  } catch (err) {
    if (!isReplyError(err, 'NOSCRIPT')) throw err;
    return conn.send(['EVAL', script.source, ...tail], keys[0]);
  }
}

// ---- ioredis -------------------------------------------------------------

interface IoRedisBatch {
  callBuffer(command: string, ...args: Arg[]): IoRedisBatch;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

interface IoRedisLike {
  callBuffer(command: string, ...args: Arg[]): Promise<unknown>;
  pipeline(): IoRedisBatch;
  multi(): IoRedisBatch;
  duplicate(...args: unknown[]): IoRedisLike;
  connect(): Promise<void>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  isCluster?: boolean;
  options?: Record<string, unknown>;
  readonly status?: string;
}

function isIoRedis(c: object): c is IoRedisLike {
  return typeof (c as IoRedisLike).callBuffer === 'function' && typeof (c as IoRedisLike).duplicate === 'function';
}

class IoRedisDriver implements Driver {
  readonly kind = 'ioredis';
  readonly isCluster: boolean;
  readonly #batcher: TickBatcher;
  /** Adds: on a connection that never re-sends an unanswered command (ioPublisher.ts). */
  readonly #publish: TickBatcher;
  /** Whether CLIENT UNBLOCK is refused, for all the library's connections of this client. */
  readonly #unblockPermission = new UnblockPermission();
  constructor(private readonly client: IoRedisLike) {
    this.isCluster = client.isCluster === true;
    checkIoOptions(client);
    const groupOf = this.isCluster ? slotOf : undefined;
    // ioredis 6 drops the command name of an auto-pipelined `callBuffer`
    // (it restores it for `call` only): on such a client a command goes as a
    // pipeline of one, which ioredis never auto-pipelines.
    const autoPipelined = client.options?.enableAutoPipelining === true;
    this.#batcher = new TickBatcher(
      autoPipelined ? (args) => ioBatch(client.pipeline(), [args]).then(outcomeValue) : (args) => ioCall(client, args),
      (cmds) => ioBatch(client.pipeline(), cmds),
      groupOf,
    );
    const publisher = new IoPublisher(client, this.isCluster);
    const publish = (args: readonly Arg[]) => ioCall(publisher.get(), args);
    this.#publish = new TickBatcher(
      publish,
      // A Cluster pipeline that meets MOVED or ASK is sent again as a whole
      // once all its replies are in, while commands sent after it and
      // redirected one by one already went: adds of one stream were stored
      // out of order during a slot migration. Commands sent one by one are
      // redirected in the order their replies come, which is the order sent.
      this.isCluster ? (cmds, key) => oneByOne(publish, cmds, key) : (cmds) => ioBatch(publisher.get().pipeline(), cmds),
      groupOf,
      this.isCluster,
    );
  }

  closed(): string | undefined {
    return this.client.status === 'end' ? 'the ioredis client was closed (quit or disconnect)' : undefined;
  }

  send(args: readonly Arg[], key?: string): Promise<unknown> {
    return this.#batcher.send(args, key);
  }

  sendMergeable(merge: Mergeable, key: string): Promise<unknown> {
    return this.#publish.sendMergeable(merge, key);
  }

  async openOwned(label: string, logger: Logger): Promise<OwnedConnection> {
    const name = connectionName(label);
    // Fail fast while disconnected, instead of queueing: the library's loops
    // own the retry policy (backoff, logging, close).
    const overrides = {
      enableAutoPipelining: false,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableReadyCheck: true,
      connectionName: name,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      // The user's per-command timeouts would cut blocking reads short.
      commandTimeout: undefined,
      blockingTimeout: undefined,
    };
    const dup = this.isCluster
      ? this.client.duplicate(undefined, {
          enableAutoPipelining: false,
          lazyConnect: true,
          enableOfflineQueue: false,
          // A command on a node connection that closed, or met CLUSTERDOWN,
          // fails instead of going out again after a delay: the loop builds
          // the next one (a blocking read must learn its new connection's ID
          // first, or nothing could end it; see clusterLinks.ts).
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          redisOptions: {
            ...(this.client.options?.redisOptions as object),
            connectionName: name,
            maxRetriesPerRequest: 0,
            commandTimeout: undefined,
            blockingTimeout: undefined,
          },
        })
      : this.client.duplicate(overrides);
    return openWith(
      name,
      logger,
      {
        send: (args) => ioCall(dup, args),
        // Raw MULTI/EXEC on this connection (nothing else uses it) costs half of
        // ioredis' multi() per read; a cluster needs multi() to route it.
        transaction: (cmds) => (this.isCluster ? ioBatch(dup.multi(), cmds) : rawTransaction((args) => ioCall(dup, args), cmds)),
        connect: () => dup.connect(),
        close: () => dup.disconnect(false),
        on: (ev, fn) => dup.on(ev, fn),
        links: this.isCluster ? ioLinks<IoRedisLike>(dup, ioCall) : undefined,
        unblockPermission: this.#unblockPermission,
      },
      !this.isCluster,
    );
  }
}

// ---- node-redis ------------------------------------------------------------

interface NodeRedisLike {
  sendCommand(...args: unknown[]): Promise<unknown>;
  getNodeClientForKey(key: string): Promise<NodeRedisLike>;
  duplicate(overrides?: Record<string, unknown>): NodeRedisLike;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  options?: Record<string, unknown>;
  masters?: unknown;
  readonly isReady?: boolean;
  readonly isOpen?: boolean;
}

function isNodeRedis(c: object): c is NodeRedisLike {
  return typeof (c as NodeRedisLike).sendCommand === 'function' && typeof (c as NodeRedisLike).duplicate === 'function';
}

// RESP type bytes: blob strings as Buffers, maps as flat arrays (like ioredis).
const BLOB_STRING = 36;
const MAP = 37;
const TYPE_MAPPING = { [BLOB_STRING]: Buffer, [MAP]: Array };
/** The library's own connections run without a per-command timeout: blocks outlive it, and it costs throughput. */
const OWN_OPTIONS = { typeMapping: TYPE_MAPPING, timeout: undefined };
/** With the client's own timeout, if it has one (node-redis 6: 5 s unless set). */
const USER_OPTIONS = { typeMapping: TYPE_MAPPING };

class NodeRedisDriver implements Driver {
  readonly kind = 'node-redis';
  readonly isCluster: boolean;
  readonly #batcher: TickBatcher;
  readonly #publish: TickBatcher;
  /** Whether CLIENT UNBLOCK is refused, for all the library's connections of this client. */
  readonly #unblockPermission = new UnblockPermission();
  constructor(private readonly client: NodeRedisLike) {
    const cluster = 'masters' in client;
    this.isCluster = cluster;
    const one = (args: readonly Arg[], key: string | undefined): Promise<unknown> => {
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
      // keeps the timeout.
      return client.sendCommand(a, client.isReady === true ? OWN_OPTIONS : USER_OPTIONS);
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

  async openOwned(label: string, logger: Logger): Promise<OwnedConnection> {
    const name = connectionName(label);
    const cluster = this.isCluster;
    // node-redis retries a failed first handshake forever (connect() never
    // settles): until the first connect succeeded, an error Redis replied
    // (a rejected handshake: ACL, max clients...) or the deadline ends it, and
    // connect() rejects with it. After that, reconnects go on: the library's
    // loops own the retry policy.
    let connected = false;
    const deadline = Date.now() + OPEN_TIMEOUT_MS;
    const reconnectStrategy = (retries: number, cause: unknown): number | Error => {
      if (!connected && cause instanceof Error && (setupRejected(cause) || Date.now() >= deadline)) return cause;
      return Math.min(50 * 2 ** Math.min(retries, 6), 2000);
    };
    let dup: NodeRedisLike;
    if (cluster) {
      const opts = ((this.client as { _options?: Record<string, unknown> })._options ?? {}) as Record<string, unknown>;
      const defaults = (opts.defaults ?? {}) as Record<string, unknown>;
      const socket = (defaults.socket ?? {}) as Record<string, unknown>;
      dup = this.client.duplicate({
        commandOptions: OWN_OPTIONS,
        defaults: { ...defaults, name, socket: { ...socket, reconnectStrategy } },
      });
    } else {
      const socket = (this.client.options?.socket ?? {}) as Record<string, unknown>;
      dup = this.client.duplicate({
        disableOfflineQueue: true,
        name,
        socket: { ...socket, reconnectStrategy },
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
        close: () => dup.destroy(),
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

/** Sends commands one by one in one tick (the client writes them together) and collects each one's outcome. */
function oneByOne(
  one: (args: readonly Arg[], key: string | undefined) => Promise<unknown>,
  cmds: ReadonlyArray<readonly Arg[]>,
  key: string | undefined,
): Promise<Outcome[]> {
  return Promise.all(
    cmds.map((c) =>
      one(c, key).then(
        (value): Outcome => ({ ok: true, value }),
        (error: unknown): Outcome => ({ ok: false, error }),
      ),
    ),
  );
}

function toNodeArg(a: Arg): string | Buffer {
  return typeof a === 'number' ? String(a) : a;
}

/**
 * The library names its keys itself (`pulse:stream:<name>`, shared with Go
 * Pulse): ioredis' `keyPrefix` would prefix some (KEYS of commands) and not
 * others (keys inside replies and script arguments), and replies would
 * match no stream.
 */
function checkIoOptions(client: IoRedisLike): void {
  const options = client.options ?? {};
  const prefix = options.keyPrefix ?? (options.redisOptions as Record<string, unknown> | undefined)?.keyPrefix;
  if (prefix !== undefined && prefix !== '')
    throw new InvalidArgumentError('ioredis keyPrefix is not supported: pass a client without it (keys are pulse:stream:<name>)');
}

function outcomeValue([o]: Outcome[]): unknown {
  if (!o) throw new Error('no reply');
  if (!o.ok) throw o.error;
  return o.value;
}

function ioCall(client: IoRedisLike, args: readonly Arg[]): Promise<unknown> {
  const [cmd, ...rest] = args;
  return client.callBuffer(String(cmd), ...rest);
}

async function ioBatch(batch: IoRedisBatch, cmds: ReadonlyArray<readonly Arg[]>): Promise<Outcome[]> {
  for (const [cmd, ...rest] of cmds) batch.callBuffer(String(cmd), ...rest);
  const results = await batch.exec();
  if (!results) throw new Error('transaction aborted');
  return results.map(([error, value]) => (error ? { ok: false, error } : { ok: true, value }));
}

/**
 * MULTI, the commands and EXEC, queued in one tick on a connection nothing
 * else writes to, so they stay together. Per-command errors come back inside
 * EXEC's reply.
 */
async function rawTransaction(
  send: (args: readonly Arg[]) => Promise<unknown>,
  cmds: ReadonlyArray<readonly Arg[]>,
): Promise<Outcome[]> {
  const sent = [send(['MULTI']), ...cmds.map(send), send(['EXEC'])];
  const settled = await Promise.allSettled(sent);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const replies = (settled[settled.length - 1] as PromiseFulfilledResult<unknown>).value;
  if (!Array.isArray(replies)) throw new Error('transaction aborted');
  return replies.map((r: unknown) => (r instanceof Error ? { ok: false, error: r } : { ok: true, value: r }));
}

// ---- shared ------------------------------------------------------------------

const drivers = new WeakMap<object, Driver>();

/** Wraps a user's client. Throws `InvalidArgumentError` for anything that is not a supported client. */
export function driverFor(client: unknown): Driver {
  if (typeof client === 'object' && client !== null) {
    const known = drivers.get(client);
    if (known) return known;
    const driver = isIoRedis(client) ? new IoRedisDriver(client) : isNodeRedis(client) ? new NodeRedisDriver(client) : undefined;
    if (driver) {
      drivers.set(client, driver);
      return driver;
    }
  }
  throw new InvalidArgumentError('redis must be an ioredis Redis/Cluster or a node-redis client/cluster (v5 or later)');
}
