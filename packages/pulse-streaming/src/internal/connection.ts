/**
 * Connections the library opens itself (blocking reads, a sink's background
 * work): what they look like to the rest of the library, their names as
 * `CLIENT LIST` shows them, and a first connect that fails instead of
 * retrying for ever.
 */
import { createHash } from 'node:crypto';
import { PulseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Outcome } from './batcher.js';
import { type ClusterLinks, type NodeRouting, nodeIds, UnblockPermission, type UnblockTarget } from './clusterLinks.js';
import type { Arg } from './command.js';
import { errorText, replyCode, toPulseError } from './redisErrors.js';

/** Something that runs commands. `key` routes the command on a cluster. */
export interface Connection {
  send(args: readonly Arg[], key?: string): Promise<unknown>;
}

/** A connection the library opened and must close. */
export interface OwnedConnection extends Connection, NodeRouting {
  /**
   * Runs commands as one transaction (MULTI/EXEC): nothing else runs between
   * them. On a cluster every key must share one slot (`key` routes it).
   */
  transaction(cmds: ReadonlyArray<readonly Arg[]>, key?: string): Promise<Outcome[]>;
  /** The server-side client ID of the current connection (changes on reconnect). */
  clientId(): number | undefined;
  /**
   * Readies a blocking read of `key` to be ended by CLIENT UNBLOCK (see
   * {@link unblockTarget}). On a cluster, commands for `key` travel on the
   * connection to its slot's node, whose ID is learned here (once per
   * connection: `CLIENT ID` before the read, as nothing can pass a blocked
   * read on it). Resolves true when such a read can be ended so.
   */
  readyUnblock(key: string): Promise<boolean>;
  /**
   * What ends the read blocked on this connection (on a cluster, for
   * {@link NodeRouting.sendToNode}); undefined when that is not known for
   * sure (the ID of another node's client would unblock someone else).
   */
  unblockTarget(): Promise<UnblockTarget | undefined>;
  /**
   * CLIENT UNBLOCK was refused (an ACL changed since {@link readyUnblock}
   * checked): no connection of this client readies a read for a while
   * (`UnblockPermission`), so their reads block `blockMs`.
   */
  unblockRefused(): void;
  /**
   * Cluster only: the node (`host:port`) the last read readied by
   * {@link readyUnblock} was sent to, and its key; undefined on one node.
   */
  readNode(): { readonly node: string; readonly key: string } | undefined;
  /** Cluster only: the master of `key`'s slot (`host:port`) as this connection's client sees it now; undefined when unknown or on one node. */
  ownerOf(key: string): Promise<string | undefined>;
  /** How many times it connected again after a drop: the server may have restarted or failed over meanwhile. */
  reconnects(): number;
  /** Closes at once: in-flight commands reject. */
  close(): void;
}

export interface RawConnection {
  send(args: readonly Arg[], key?: string): Promise<unknown>;
  /** Cluster only: its connections to the nodes, and whether CLIENT UNBLOCK is refused (shared by the client's connections). */
  readonly links?: ClusterLinks;
  readonly unblockPermission?: UnblockPermission;
  transaction(cmds: ReadonlyArray<readonly Arg[]>, key?: string): Promise<Outcome[]>;
  connect(): Promise<void>;
  close(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * Longest a new connection of the library's may take to be ready (connect and
 * handshake, retried on errors) before `newSink`/`newReader`/`addStream` fail
 * with a `PulseError`, instead of waiting for ever on a Redis that cannot take it.
 */
export const OPEN_TIMEOUT_MS = 10_000;

/** Longest connection name the library sets: it is for people reading `CLIENT LIST`. */
const MAX_CONNECTION_NAME = 128;

/**
 * The client name a connection of the library's gets, from a label such as
 * `pulse:sink:<name>:control`. Redis only accepts `!`..`~` in client names
 * (node-redis would retry a rejected name for ever), while sink and stream
 * names may hold any character but a few: every other byte of the UTF-8
 * form, and `%` itself, is written `%XX`, so the name stays readable and
 * distinct names stay distinct. Longer than 128 characters, it is cut and
 * ends with a hash of the whole label.
 */
export function connectionName(label: string): string {
  let out = '';
  for (const b of Buffer.from(label, 'utf8')) {
    out += b >= 0x21 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length <= MAX_CONNECTION_NAME) return out;
  const hash = createHash('sha1').update(label).digest('hex').slice(0, 16);
  return `${out.slice(0, MAX_CONNECTION_NAME - hash.length - 1)}~${hash}`;
}

/**
 * An error Redis replied to the handshake (ACL, max clients, a bad name):
 * retrying the same handshake will not make it pass. `LOADING` will.
 */
export function setupRejected(err: Error): boolean {
  const replied = ['SimpleError', 'BlobError', 'ErrorReply', 'ReplyError'].includes(err.constructor.name);
  return replied && replyCode(err) !== 'LOADING';
}

export async function openWith(name: string, logger: Logger, raw: RawConnection, trackId: boolean): Promise<OwnedConnection> {
  let id: number | undefined;
  let closed = false;
  let ready = 0;
  let lastError: unknown;
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
  // A refused handshake (WRONGPASS after a password change, a disabled ACL user) is retried, as
  // an operator may fix it, but said at warn once per outage: debug would hide why nothing moves.
  let refusalSaid = false;
  raw.on('error', (err: unknown) => {
    lastError = err;
    if (closed) return;
    if (!refusalSaid && err instanceof Error && setupRejected(err)) {
      refusalSaid = true;
      logger.warn({ connection: name, err: errorText(err) }, 'Redis refused the connection, retrying');
    } else logger.debug({ connection: name, err: errorText(err) }, 'redis connection error');
  });
  raw.on('ready', () => {
    refusalSaid = false;
    ready++;
    refreshId();
  });
  // Bounded: a connection that cannot be set up fails the caller with the
  // last error as cause, and stops retrying, instead of hanging it.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const why = lastError === undefined ? '' : `: ${errorText(lastError)}`;
      reject(
        new PulseError(`open connection ${name}: not ready after ${OPEN_TIMEOUT_MS} ms${why}`, {
          cause: lastError ?? new Error('connect timed out'),
        }),
      );
    }, OPEN_TIMEOUT_MS + 500);
  });
  try {
    await Promise.race([
      (async () => {
        await raw.connect();
        // Only CLIENT UNBLOCK needs it: an ACL that refuses CLIENT leaves reads to end by blockMs (README).
        if (trackId)
          id = await raw.send(['CLIENT', 'ID']).then(Number, (err: unknown) => {
            if (replyCode(err) !== 'NOPERM') throw err;
            logger.debug({ connection: name, err: errorText(err) }, 'CLIENT ID refused: blocking reads end by blockMs only');
            return undefined;
          });
      })(),
      deadline,
    ]);
  } catch (err) {
    closed = true;
    try {
      raw.close();
    } catch {
      // Already closed by the client itself (its retries gave up): nothing to release.
    }
    // ioredis rejects with "Connection is closed." when Redis refused the handshake: the reason
    // (WRONGPASS, max number of clients) is the last error it emitted.
    // At maxclients Redis closes the socket before ioredis reads the refusal: the last error
    // (EPIPE) is all there is, and still says more than "closed".
    const refused = lastError instanceof Error && lastError !== err && setupRejected(lastError);
    const also = !refused && lastError instanceof Error && lastError !== err ? ` (last error: ${errorText(lastError)})` : '';
    throw toPulseError(refused ? lastError : err, `open connection ${name}${also}`);
  } finally {
    clearTimeout(timer);
  }
  const nodes =
    raw.links && nodeIds(raw.links, (args, key) => raw.send(args, key), raw.unblockPermission ?? new UnblockPermission());
  return {
    send: (args, key) => raw.send(args, key),
    transaction: (cmds, key) => raw.transaction(cmds, key),
    clientId: () => id,
    readyUnblock: async (key) => (nodes ? nodes.ready(key) : id !== undefined),
    unblockRefused: () => nodes?.refused(),
    unblockTarget: async () => (nodes ? nodes.target() : id === undefined ? undefined : { id, node: undefined }),
    sendToNode: (address, args, key) => (nodes ? nodes.send(address, args, key) : raw.send(args)),
    readNode: () => nodes?.readNode(),
    ownerOf: async (key) => (raw.links ? (await raw.links.nodeOf(key))?.address : undefined),
    // The first 'ready' is the connect awaited below.
    reconnects: () => Math.max(0, ready - 1),
    close: () => {
      if (closed) return;
      closed = true;
      raw.close();
    },
  };
}

// One driver per client: every Stream on a client shares its batcher, so
// commands leave in the order they were issued, as they would on the client.
