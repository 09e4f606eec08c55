/**
 * The one place that knows the two Redis clients. The rest of the library
 * sends raw commands through a `Connection` and gets replies with Buffers for
 * every bulk string, so payloads stay bytes.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { errorText, isReplyError } from './redisErrors.js';
import type { Script } from './script.js';

export type Arg = string | Buffer | number;

/** Something that runs commands. `key` routes the command on a cluster. */
export interface Connection {
  send(args: readonly Arg[], key?: string): Promise<unknown>;
}

/** A connection the library opened and must close. */
export interface OwnedConnection extends Connection {
  /** The server-side client ID of the current connection (changes on reconnect). */
  clientId(): number | undefined;
  /** Closes at once: in-flight commands reject. */
  close(): void;
}

/** The user's client, as the library sees it. */
export interface Driver extends Connection {
  readonly kind: 'ioredis' | 'node-redis';
  readonly isCluster: boolean;
  /** Opens a connection of the library's own, for blocking reads and background work. */
  openOwned(name: string, logger: Logger): Promise<OwnedConnection>;
}

/** Any client accepted by the library: ioredis `Redis`/`Cluster`, or a node-redis client/cluster (v5+). */
export type RedisClient = object;

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

interface IoRedisLike {
  callBuffer(command: string, ...args: Arg[]): Promise<unknown>;
  duplicate(...args: unknown[]): IoRedisLike;
  connect(): Promise<void>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  isCluster?: boolean;
  options?: Record<string, unknown>;
}

function isIoRedis(c: object): c is IoRedisLike {
  return typeof (c as IoRedisLike).callBuffer === 'function' && typeof (c as IoRedisLike).duplicate === 'function';
}

class IoRedisDriver implements Driver {
  readonly kind = 'ioredis';
  readonly isCluster: boolean;
  constructor(private readonly client: IoRedisLike) {
    this.isCluster = client.isCluster === true;
  }

  send(args: readonly Arg[]): Promise<unknown> {
    const [cmd, ...rest] = args;
    return this.client.callBuffer(String(cmd), ...rest);
  }

  async openOwned(name: string, logger: Logger): Promise<OwnedConnection> {
    // Fail fast while disconnected, instead of queueing: the library's loops
    // own the retry policy (backoff, logging, close).
    const overrides = {
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
          lazyConnect: true,
          enableOfflineQueue: false,
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
        send: (args) => {
          const [cmd, ...rest] = args;
          return dup.callBuffer(String(cmd), ...rest);
        },
        connect: () => dup.connect(),
        close: () => dup.disconnect(false),
        on: (ev, fn) => dup.on(ev, fn),
      },
      !this.isCluster,
    );
  }
}

// ---- node-redis ------------------------------------------------------------

interface NodeRedisLike {
  sendCommand(...args: unknown[]): Promise<unknown>;
  duplicate(overrides?: Record<string, unknown>): NodeRedisLike;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  options?: Record<string, unknown>;
  masters?: unknown;
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
const USER_OPTIONS = { typeMapping: TYPE_MAPPING };

class NodeRedisDriver implements Driver {
  readonly kind = 'node-redis';
  readonly isCluster: boolean;
  constructor(private readonly client: NodeRedisLike) {
    this.isCluster = 'masters' in client;
  }

  send(args: readonly Arg[], key?: string): Promise<unknown> {
    const a = args.map(toNodeArg);
    return this.isCluster ? this.client.sendCommand(key, false, a, USER_OPTIONS) : this.client.sendCommand(a, USER_OPTIONS);
  }

  async openOwned(name: string, logger: Logger): Promise<OwnedConnection> {
    const cluster = this.isCluster;
    const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000);
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
        connect: async () => {
          await dup.connect();
        },
        close: () => dup.destroy(),
        on: (ev, fn) => dup.on(ev, fn),
      },
      !cluster,
    );
  }
}

function toNodeArg(a: Arg): string | Buffer {
  return typeof a === 'number' ? String(a) : a;
}

// ---- shared ------------------------------------------------------------------

interface RawConnection {
  send(args: readonly Arg[], key?: string): Promise<unknown>;
  connect(): Promise<void>;
  close(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

async function openWith(name: string, logger: Logger, raw: RawConnection, trackId: boolean): Promise<OwnedConnection> {
  let id: number | undefined;
  let closed = false;
  const refreshId = (): void => {
    if (!trackId || closed) return;
    raw.send(['CLIENT', 'ID']).then(
      (r) => {
        id = Number(r);
      },
      () => {
        id = undefined;
      },
    );
  };
  // An 'error' event without a listener crashes node-redis users' processes.
  raw.on('error', (err: unknown) => {
    if (!closed) logger.debug({ connection: name, err: errorText(err) }, 'redis connection error');
  });
  raw.on('ready', refreshId);
  try {
    await raw.connect();
  } catch (err) {
    closed = true;
    raw.close();
    throw err;
  }
  if (trackId) id = Number(await raw.send(['CLIENT', 'ID']));
  return {
    send: (args, key) => raw.send(args, key),
    clientId: () => id,
    close: () => {
      if (closed) return;
      closed = true;
      raw.close();
    },
  };
}

/** Wraps a user's client. Throws `InvalidArgumentError` for anything that is not a supported client. */
export function driverFor(client: unknown): Driver {
  if (typeof client === 'object' && client !== null) {
    if (isIoRedis(client)) return new IoRedisDriver(client);
    if (isNodeRedis(client)) return new NodeRedisDriver(client);
  }
  throw new InvalidArgumentError('redis must be an ioredis Redis/Cluster or a node-redis client/cluster (v5 or later)');
}
