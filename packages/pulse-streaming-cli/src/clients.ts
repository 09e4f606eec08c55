/**
 * The program's own ioredis clients: a plain `Redis` for a single server, an
 * ioredis `Cluster` for a Redis Cluster. Both fail fast instead of retrying,
 * so an unreachable server is an error within a few seconds, never a hang.
 */
import { Cluster, Redis } from 'ioredis';
import { CliError, errorMessage } from './errors.js';
import { onCleanup } from './lifecycle.js';

/** A client of the program: one server, or a whole cluster. Commands that name a key are routed by it. */
export type CliRedis = Redis | Cluster;

const CONNECT_TIMEOUT_MS = 2000;
/** Connect plus the first answer. */
const HANDSHAKE_TIMEOUT_MS = 3000;
// Longer than any blocking read the program runs (5 s), so reads are never cut short.
const COMMAND_TIMEOUT_MS = 15_000;

/** A URL without its password, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/**
 * True when `client` is an ioredis `Cluster`. The dashboard takes the user's
 * client, possibly of another ioredis copy, so ioredis' own flag counts too.
 */
export function isCluster(client: CliRedis): client is Cluster {
  return client instanceof Cluster || (client as { isCluster?: unknown }).isCluster === true;
}

/** The clients to run a per-server command (SCAN) on: every master of a cluster, else the one server. */
export function serversOf(client: CliRedis): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/** The most telling error of a failed connection: a cluster's "slots cache" error wraps the node's own. */
function causeOf(err: unknown): unknown {
  if (err instanceof Error && 'lastNodeError' in err && err.lastNodeError instanceof Error) return err.lastNodeError;
  return err;
}

/**
 * Connects `client` (created with `lazyConnect`) and waits for `ready` to
 * answer, within the handshake timeout. Registers its disconnection as a cleanup.
 * @throws CliError naming `what` when it cannot connect.
 */
async function handshake<C extends CliRedis>(client: C, what: string, ready: (c: C) => Promise<unknown>): Promise<C> {
  // Errors surface through the rejected commands; an unhandled 'error' event would print a stack.
  let cause: unknown;
  client.on('error', (err: unknown) => {
    cause ??= causeOf(err);
  });
  const unregister = onCleanup(() => client.disconnect());
  let timer: NodeJS.Timeout | undefined;
  try {
    // connectTimeout covers the TCP connect only: a server that accepts but never answers is caught here.
    const answered = client.connect().then(() => ready(client));
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s`)), HANDSHAKE_TIMEOUT_MS);
    });
    answered.catch(() => {});
    await Promise.race([answered, silent]);
  } catch (err) {
    unregister();
    client.disconnect();
    throw new CliError(`cannot connect to ${what}: ${errorMessage(cause ?? causeOf(err))}`);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/**
 * Connects a new ioredis client that fails fast: connect timeout ~2 s, one
 * attempt per command, no reconnection. Registers its disconnection as a cleanup.
 * @throws CliError when the server cannot be reached.
 */
export function connectClient(url: string, name: string): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    connectionName: name,
  });
  return handshake(client, `Redis at ${displayUrl(url)}`, (c) => c.ping());
}

/**
 * Connects an ioredis `Cluster` with the node at `url` as its startup node,
 * with the same fail-fast settings as {@link connectClient} on every node
 * connection and no reconnection of the cluster. The URL's user, password and
 * `rediss:` (TLS) apply to every node. Resolves once the slot map is loaded
 * and the cluster reports `cluster_state:ok`.
 * @throws CliError when the cluster cannot be reached or is not one.
 */
export function connectClusterClient(url: string, name: string): Promise<Cluster> {
  const u = new URL(url);
  const client = new Cluster([{ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) }], {
    lazyConnect: true,
    clusterRetryStrategy: () => null,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    redisOptions: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      connectionName: name,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  return handshake(client, `Redis Cluster at ${displayUrl(url)}`, (c) => c.ping());
}

/** True when the server is a node of a Redis Cluster (`INFO cluster` says `cluster_enabled:1`); false when INFO is refused. */
export async function clusterEnabled(client: Redis): Promise<boolean> {
  try {
    return /^cluster_enabled:1\s*$/m.test(await client.info('cluster'));
  } catch {
    return false;
  }
}
