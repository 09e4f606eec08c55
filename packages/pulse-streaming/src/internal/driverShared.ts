/**
 * What both client drivers share: the `Driver` the rest of the library sees,
 * and two ways of sending a group of commands and collecting each outcome.
 */
import type { Logger } from '../logger.js';
import type { Mergeable, Outcome } from './batcher.js';
import type { Arg } from './command.js';
import type { Connection, OwnedConnection } from './connection.js';

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
  /**
   * Opens a connection of the library's own, for blocking reads and background work. `blockMs`: the longest a command
   * of it blocks (a reading connection); see {@link ownSocketTimeout}. `avoid` (a cluster node's `host:port`): a node
   * found silent, through which the new connection must not discover the cluster (see rootNodes.ts).
   */
  openOwned(name: string, logger: Logger, blockMs?: number, avoid?: string): Promise<OwnedConnection>;
  /** Why the user's client can send nothing (closed, or never connected), else undefined. */
  closed(): string | undefined;
}

/** Sends commands one by one in one tick (the client writes them together) and collects each one's outcome. */
export function oneByOne(
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

/**
 * MULTI, the commands and EXEC, queued in one tick on a connection nothing
 * else writes to, so they stay together. Per-command errors come back inside
 * EXEC's reply.
 */
export async function rawTransaction(
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

/**
 * The socket timeout of a connection of the library's own, from the one of
 * the user's client (`user`, ms; anything else: none), lengthened by
 * `blockMs`, the longest the connection waits with nothing to receive: a
 * reading connection's longest block, the control connection's time
 * between beats. As is, it cut every blocking read longer than it (a
 * reconnect and a warning every `blockMs`, outside review M) and, node-redis'
 * being an idle timeout, closed an idle control connection again and again
 * (review Q); dropped, a connection gone silent (a half-open link, a stuck
 * proxy) left a read waiting for ever (review P): it is the only way the
 * client finds such a connection dead. Left: node-redis closes a read
 * connection paused behind full buffers (a consumer that stopped pulling)
 * longer than this, and it reconnects when reads resume (nothing is lost).
 */
export function ownSocketTimeout(user: unknown, blockMs: number | undefined): number | undefined {
  if (typeof user !== 'number' || !(user > 0)) return undefined;
  return blockMs === undefined ? user : user + blockMs;
}
