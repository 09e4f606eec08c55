/**
 * The connection `stream.add` uses on an ioredis client.
 *
 * ioredis sends again, once it has reconnected, every command it had written
 * but not seen answered (`autoResendUnfulfilledCommands`, on by default; a
 * Cluster does the same on "Connection is closed" after
 * `retryDelayOnFailover`). An add that Redis ran (and, with `appendfsync
 * always`, kept) just before the connection dropped would be stored twice,
 * both copies delivered as first deliveries (issue 13, defect 16). Whether it
 * ran cannot be known from the client, so adds must not be re-sent: they
 * travel on a connection of the library's own, duplicated from the user's
 * client (same address, auth, TLS, timeouts) with those re-sends off. An add
 * whose answer never came is rejected (its outcome unknown) and never sent
 * again.
 *
 * node-redis needs none of this: it rejects the commands whose answers the
 * connection lost, and re-sends only redirections (`MOVED`/`ASK`, which ran
 * nowhere), so adds stay on the user's client there.
 */

import { errorText, markUnsent } from './redisErrors.js';

/** What this module needs of an ioredis `Redis` or `Cluster`. */
export interface IoDuplicable<C> {
  duplicate(...args: unknown[]): C;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly status?: string;
}

type RetryStrategy = (this: unknown, ...args: unknown[]) => unknown;

/** ioredis' rejection of a command it will not retry (this connection's `maxRetriesPerRequest: 0`). */
const MAX_RETRIES = /max retries per request/i;

/**
 * Whether the user closed their client. ioredis says so by 'end', except when
 * `disconnect()` is called while the client waits to reconnect: it clears its
 * timer and emits nothing (a Redis stays 'reconnecting', a Cluster
 * 'disconnecting'), and `manuallyClosing`, which ioredis keeps private, is all
 * that tells it from a client about to reconnect. It is only trusted in those
 * states: a client revived by connect() keeps it set while connected.
 */
export function userClosed(user: { readonly status?: string }): boolean {
  const { status } = user;
  if (status === 'end') return true;
  const manually = (user as { manuallyClosing?: unknown }).manuallyClosing === true;
  return manually && (status === 'reconnecting' || status === 'disconnecting' || status === 'close');
}

/**
 * The user's `reconnectOnError` for a connection of the library's own: the
 * reconnect it asks for stays, the resend (2) does not. ioredis sends a
 * command refused with an error reply again once reconnected: after adds
 * issued since (out of order), or, refused again (a replica's `READONLY`
 * while it stays one), flushed by the next reconnect as unanswered, so that
 * an add Redis refused read as one whose outcome is unknown, and a loop's
 * command failed without its error. The command now fails with the error
 * Redis gave; the add's caller, or the loop, retries.
 */
export function withoutResend(reconnectOnError: unknown): ((err: Error) => boolean | 1 | 2) | null {
  if (typeof reconnectOnError !== 'function') return null;
  return (err) => {
    const r = (reconnectOnError as (err: Error) => boolean | 1 | 2)(err);
    return r === 2 ? 1 : r;
  };
}

/** `CLIENT LIST` shows it under this name, as the library's other connections show theirs. */
export const PUBLISH_CONNECTION_NAME = 'pulse:publish';

/**
 * ioredis' `disconnectTimeout` for the library's own connections: how long a
 * closed connection's socket may take to end before it is destroyed. Its
 * default (2 s) is a ref'd timer: a connection closed while it reconnected
 * kept the process alive 2 s after `close()` resolved (measured 2.0 s; 0.1 s
 * with this). Nothing is waited for on a connection being closed.
 */
export const OWN_DISCONNECT_MS = 100;

/**
 * Overrides of the duplicated connection.
 * `maxRetriesPerRequest: 0`: with `autoResendUnfulfilledCommands` off and any
 * other value, ioredis drops the unanswered commands on reconnect without
 * settling them (their promises would never settle); with 0 it rejects them
 * when the connection closes. Adds issued while it reconnects wait in the
 * offline queue and leave once it is ready, or are rejected (never sent) when
 * a reconnection attempt fails.
 */
const SINGLE = {
  // ioredis 6 drops the command name of an auto-pipelined callBuffer (driver.ts).
  enableAutoPipelining: false,
  connectionName: PUBLISH_CONNECTION_NAME,
  lazyConnect: true,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  disconnectTimeout: OWN_DISCONNECT_MS,
};
const NODE = {
  connectionName: PUBLISH_CONNECTION_NAME,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  disconnectTimeout: OWN_DISCONNECT_MS,
};

/** What is known of one publishing connection: how often it became ready, and its last error. */
interface ConnState {
  readies: number;
  lastError: unknown;
}

export class IoPublisher<C extends IoDuplicable<C>> {
  #conn: C | undefined;
  readonly #states = new WeakMap<C, ConnState>();

  constructor(
    private readonly user: C & { readonly options?: Record<string, unknown> },
    private readonly isCluster: boolean,
    /** The database the user's client uses now (single node): a new publishing connection opens in it. */
    private readonly dbOf?: () => number,
  ) {
    // The user's client ended (quit, disconnect): so does this one, or it
    // would keep the process alive. A later add opens it again.
    user.on('end', () => this.#closeIfUserClosed());
    // A Cluster disconnected while it waits to reconnect says 'disconnecting' and never 'end'.
    user.on('disconnecting', () => this.#closeIfUserClosed());
    // A Redis disconnected while it waits to reconnect says nothing at all: once its wait
    // is over (its own timer fires first, as it was armed first), a client still
    // 'reconnecting' was closed. Unref'd: it must not keep the process alive itself.
    user.on('reconnecting', (delay: unknown) => {
      if (typeof delay !== 'number') return;
      setTimeout(() => this.#closeIfUserClosed(), delay + 100).unref();
    });
  }

  #closeIfUserClosed(): void {
    const conn = this.#conn;
    if (!conn || !userClosed(this.user)) return;
    // Waiting to reconnect, disconnect() would clear its timer and leave it
    // 'reconnecting' for good, the adds in its offline queue never settled: its
    // next attempt ends it instead (its retry strategy and 'connect' below), and
    // rejects them.
    if (conn.status === 'reconnecting' || conn.status === 'end') return;
    conn.disconnect(false);
  }

  /** The user's retry strategy, refused once the user's client is closed: the closed client no longer says 'end'. */
  #retry(strategy: unknown): RetryStrategy {
    const user = this.user;
    return function (this: unknown, ...args: unknown[]): unknown {
      if (userClosed(user)) return null;
      return typeof strategy === 'function' ? (strategy as RetryStrategy).apply(this, args) : null;
    };
  }

  /**
   * Called as commands are handed to `conn` (synchronously before): what to
   * make of the error one of them is rejected with. A single-node connection
   * that is not 'ready' queues commands in its offline queue, which it writes
   * only once it says 'ready' next; one rejected before that was never
   * written, though ioredis rejects it with the error it gives written ones
   * ("Connection is closed.", or "Reached the max retries per request limit"
   * when the connection cannot open). Such an error is replaced by one marked
   * unsent (redisErrors.ts) that names the connection's last error (e.g.
   * Redis' "max number of clients reached"). Anything else stands: a command
   * handed to a 'ready' connection was written, or may have been; on a
   * Cluster a node connection may hold it, unseen from here.
   */
  unsentCheck(conn: C): (err: unknown) => unknown {
    const state = this.#states.get(conn);
    if (this.isCluster || state === undefined || conn.status === 'ready') return keepError;
    const readies = state.readies;
    return (err) => {
      // A command its timeout rejected stays in the offline queue, which ioredis writes once the
      // connection is ready: it may be stored yet (outside review F). Its outcome is unknown.
      if (state.readies !== readies || isTimeout(err)) return err;
      const why = errorText(err);
      const last = state.lastError === undefined ? '' : errorText(state.lastError);
      // ioredis' own words ("Reached the max retries per request limit") hide what happened to
      // the connection: its last error, if it saw one (Redis may close it without a word). Those
      // words, and their advice to look at "maxRetriesPerRequest", are about this connection's
      // setting, not one of the user's: left out (an outside trial followed them the wrong way).
      const said = MAX_RETRIES.test(why) ? '' : ` (ioredis: ${why})`;
      const what =
        last === ''
          ? `the connection adds use closed before it was ready${said}`
          : `the connection adds use failed: ${last}${said}`;
      // Each call makes its own error: ioredis' one is shared with commands that were written.
      return markUnsent(new Error(what, { cause: err }));
    };
  }

  /** The publishing connection, opened (lazily: on its first command) when there is none or it ended. */
  get(): C {
    const current = this.#conn;
    if (current && current.status !== 'end') return current;
    const conn = this.isCluster
      ? this.user.duplicate(undefined, {
          enableAutoPipelining: false,
          lazyConnect: true,
          enableOfflineQueue: true,
          // ioredis' ready check sends CLUSTER INFO to a random node without a timeout: a frozen
          // node (SIGSTOP, a stalled host) kept this connection from ever being ready, and every
          // add waiting in its queue, while the stream's own node was healthy (outside review A).
          // The slots it needs come from CLUSTER SLOTS, which ioredis bounds (slotsRefreshTimeout);
          // a slot whose node says the cluster is down answers CLUSTERDOWN, which rejects the add.
          enableReadyCheck: false,
          // 0: a command on a node whose connection closed is rejected, not re-sent elsewhere.
          retryDelayOnFailover: 0,
          // A command retried after a delay would land after adds issued
          // meanwhile: CLUSTERDOWN (it ran nowhere) is rejected instead, and
          // MOVED is followed at once (the default, said here for that reason).
          retryDelayOnClusterDown: 0,
          retryDelayOnMoved: 0,
          redisOptions: {
            ...(this.user.options?.redisOptions as object),
            ...NODE,
            reconnectOnError: withoutResend(
              (this.user.options?.redisOptions as { reconnectOnError?: unknown } | undefined)?.reconnectOnError,
            ),
          },
          clusterRetryStrategy: this.#retry(this.user.options?.clusterRetryStrategy),
        })
      : this.user.duplicate({
          ...SINGLE,
          reconnectOnError: withoutResend(this.user.options?.reconnectOnError),
          retryStrategy: this.#retry(this.user.options?.retryStrategy),
          ...(this.dbOf ? { db: this.dbOf() } : {}),
        });
    const state: ConnState = { readies: 0, lastError: undefined };
    this.#states.set(conn, state);
    // Failures reach the adds that hit them (the last one is named in their errors, see
    // `unsentCheck`); an 'error' event without a listener would be printed.
    conn.on('error', (err: unknown) => {
      state.lastError = err;
    });
    // ioredis writes its offline queue right after it says 'ready' (readyHandler), and only then.
    conn.on('ready', () => {
      state.readies++;
      state.lastError = undefined;
    });
    // Connected again (Redis came back before its retry strategy was asked) after the
    // user's client was closed: closed at once, before its handshake.
    const closeIfUserClosed = (): void => {
      if (userClosed(this.user)) conn.disconnect(false);
    };
    conn.on('connect', closeIfUserClosed);
    conn.on('ready', closeIfUserClosed);
    this.#conn = conn;
    return conn;
  }
}

/** The check of a ready connection: its errors are kept as they are (ioredisDriver skips it). */
export function keepError(err: unknown): unknown {
  return err;
}

/** ioredis' `commandTimeout` error ("Command timed out"): the command may still be written. */
function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}
