/**
 * The driver of an ioredis `Redis` or `Cluster` (and ioredis-compatible
 * clients such as iovalkey): commands as Buffers through `callBuffer`, adds on
 * a connection of the library's own (ioPublisher.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type Mergeable, type Outcome, TickBatcher } from './batcher.js';
import { ioLinks, UnblockPermission } from './clusterLinks.js';
import type { Arg } from './command.js';
import { connectionName, type OwnedConnection, openWith } from './connection.js';
import { type Driver, oneByOne, ownSocketTimeout, rawTransaction } from './driverShared.js';
import { IoPublisher, keepError, OWN_DISCONNECT_MS, userClosed, withoutResend } from './ioPublisher.js';
import { slotOf } from './slot.js';

interface IoRedisBatch {
  callBuffer(command: string, args: readonly Arg[]): IoRedisBatch;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

export interface IoRedisLike {
  callBuffer(command: string, args: readonly Arg[]): Promise<unknown>;
  pipeline(): IoRedisBatch;
  multi(): IoRedisBatch;
  duplicate(...args: unknown[]): IoRedisLike;
  connect(): Promise<void>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  isCluster?: boolean;
  options?: Record<string, unknown>;
  readonly status?: string;
  /** ioredis' connection state: `select` is the database it uses (see `selectedDb`); null before it first connects. */
  readonly condition?: { readonly select?: number } | null;
  select?(db: number): Promise<unknown>;
}

/** Has every method the library calls on an ioredis client (`IoRedisClient`): others fail with a clear error, not a TypeError later. */
export function isIoRedis(c: object): c is IoRedisLike {
  const x = c as Partial<Record<keyof IoRedisLike, unknown>>;
  return (
    typeof x.callBuffer === 'function' &&
    typeof x.duplicate === 'function' &&
    typeof x.on === 'function' &&
    typeof x.pipeline === 'function'
  );
}

export class IoRedisDriver implements Driver {
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
    // The user's client itself, not a view of it: the publisher reads how it was closed (userClosed).
    const publisher = new IoPublisher(client, this.isCluster, this.isCluster ? undefined : () => selectedDb(client));
    // An add goes to the database the user's client uses when it is issued, as on the client itself.
    const conn = this.isCluster ? () => publisher.get() : () => followDb(publisher.get(), selectedDb(client));
    // Rejections of adds the connection never wrote are marked so (ioPublisher.ts `unsentCheck`).
    const publish = (args: readonly Arg[]): Promise<unknown> => {
      const c = conn();
      const check = publisher.unsentCheck(c);
      // Ready: an error is Redis' or ioredis' own, kept as it is, without a promise more per add.
      if (check === keepError) return ioCall(c, args);
      return ioCall(c, args).catch((err: unknown) => {
        throw check(err);
      });
    };
    const publishMany = async (cmds: ReadonlyArray<readonly Arg[]>): Promise<Outcome[]> => {
      const c = conn();
      const check = publisher.unsentCheck(c);
      let outcomes: Outcome[];
      try {
        outcomes = await ioBatch(c.pipeline(), cmds);
      } catch (err) {
        throw check(err);
      }
      return outcomes.map((o) => (o.ok ? o : { ok: false, error: check(o.error) }));
    };
    this.#publish = new TickBatcher(
      publish,
      // A Cluster pipeline that meets MOVED or ASK is sent again as a whole
      // once all its replies are in, while commands sent after it and
      // redirected one by one already went: adds of one stream were stored
      // out of order during a slot migration. Commands sent one by one are
      // redirected in the order their replies come, which is the order sent.
      this.isCluster ? (cmds, key) => oneByOne(publish, cmds, key) : publishMany,
      groupOf,
      this.isCluster,
    );
  }

  closed(): string | undefined {
    // Not only 'end': a client disconnected while it waited to reconnect stays 'reconnecting' for good.
    return userClosed(this.client) ? 'the ioredis client was closed (quit or disconnect)' : undefined;
  }

  send(args: readonly Arg[], key?: string): Promise<unknown> {
    return this.#batcher.send(args, key);
  }

  sendMergeable(merge: Mergeable, key: string): Promise<unknown> {
    return this.#publish.sendMergeable(merge, key);
  }

  async openOwned(label: string, logger: Logger, blockMs?: number): Promise<OwnedConnection> {
    const name = connectionName(label);
    // Fail fast while disconnected, instead of queueing: the library's loops
    // own the retry policy (backoff, logging, close).
    const overrides = {
      enableAutoPipelining: false,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      disconnectTimeout: OWN_DISCONNECT_MS,
      autoResendUnfulfilledCommands: false,
      enableReadyCheck: true,
      connectionName: name,
      reconnectOnError: withoutResend(this.client.options?.reconnectOnError),
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      // The user's per-command timeouts would cut blocking reads short. They
      // stay on the user's client and on the connection adds use
      // (ioPublisher.ts), which never block. socketTimeout (no data for that
      // long after a write destroys the socket) is lengthened by the longest
      // block instead (see ownSocketTimeout).
      commandTimeout: undefined,
      blockingTimeout: undefined,
      socketTimeout: ownSocketTimeout(this.client.options?.socketTimeout, blockMs),
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
            disconnectTimeout: OWN_DISCONNECT_MS,
            reconnectOnError: withoutResend(
              (this.client.options?.redisOptions as { reconnectOnError?: unknown } | undefined)?.reconnectOnError,
            ),
            commandTimeout: undefined,
            blockingTimeout: undefined,
            socketTimeout: ownSocketTimeout(
              (this.client.options?.redisOptions as { socketTimeout?: unknown } | undefined)?.socketTimeout,
              blockMs,
            ),
          },
        })
      : this.client.duplicate({ ...overrides, db: selectedDb(this.client) });
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

/**
 * The database an ioredis client uses now. After `select(n)` ioredis keeps
 * `n` in `condition.select` (set when the SELECT is sent, and selected again
 * on every reconnection), while `options.db`, which `duplicate()` copies,
 * stays the database it was created with: a connection duplicated from the
 * options alone would use another database than the client (outside review
 * P). `condition` is null until the client first connects: then its options
 * say. ioredis 6 and iovalkey keep it there (node_modules/ioredis/built/Redis.js,
 * `sendCommand`).
 */
export function selectedDb(client: IoRedisLike): number {
  const db = client.condition?.select ?? client.options?.db;
  return typeof db === 'number' ? db : 0;
}

/**
 * `conn` (the publishing connection), switched to database `db` when the
 * user's client selected another one since `conn` was opened. The SELECT
 * goes ahead of the add on the same connection, so the add runs in `db`, and
 * ioredis selects `db` again after a reconnection. A SELECT Redis refuses
 * (no such database) was refused to the client too, and leaves both where
 * they were: its error is the client's to see.
 */
function followDb(conn: IoRedisLike, db: number): IoRedisLike {
  if (selectedDb(conn) !== db && conn.select) conn.select(db).catch(() => {});
  return conn;
}

function outcomeValue([o]: Outcome[]): unknown {
  if (!o) throw new Error('no reply');
  if (!o.ok) throw o.error;
  return o.value;
}

/**
 * The arguments go as one array, which ioredis flattens (`Command`): spread
 * into the call, a merged add of 256 events with 256 headers each (about
 * 132,000 arguments) threw "Maximum call stack size exceeded" (V8 refuses
 * 100k-130k spread arguments) and failed every add merged into it (outside
 * review AM).
 */
function ioCall(client: IoRedisLike, args: readonly Arg[]): Promise<unknown> {
  return client.callBuffer(String(args[0]), args.slice(1));
}

async function ioBatch(batch: IoRedisBatch, cmds: ReadonlyArray<readonly Arg[]>): Promise<Outcome[]> {
  // One array of arguments, never spread (see ioCall).
  for (const args of cmds) batch.callBuffer(String(args[0]), args.slice(1));
  const results = await batch.exec();
  if (!results) throw new Error('transaction aborted');
  return results.map(([error, value]) => (error ? { ok: false, error } : { ok: true, value }));
}
