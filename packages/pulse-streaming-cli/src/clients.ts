/**
 * The program's own ioredis clients: a plain `Redis` for a single server, an
 * ioredis `Cluster` for a Redis Cluster. Both fail fast instead of retrying,
 * so an unreachable server is an error within a few seconds, never a hang.
 */
import { Cluster, Redis } from 'ioredis';
import { CliError, connectionFailure, errorMessage } from './errors.js';
import { onCleanup } from './lifecycle.js';
import { firstAnswer } from './sniff.js';

/** A client of the program: one server, or a whole cluster. Commands that name a key are routed by it. */
export type CliRedis = Redis | Cluster;

const CONNECT_TIMEOUT_MS = 2000;
/** Connect plus the first answer: a server that accepts and never answers fails after this (room for a loaded machine). */
const HANDSHAKE_TIMEOUT_MS = 5000;
// Longer than any blocking read the program runs (5 s), so reads are never cut short.
const COMMAND_TIMEOUT_MS = 15_000;

/** A URL without its password, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, '***');
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

/** After a connection closed at once: what the server answers to a raw PING (not over TLS). */
async function answerOf(client: CliRedis, cause: unknown, tls: boolean): Promise<string | undefined> {
  if (tls || isCluster(client)) return undefined;
  if (!/EPIPE|ECONNRESET|connection is closed|RESP type|protocol error/i.test(errorMessage(cause))) return undefined;
  const { host, port } = client.options;
  return firstAnswer(host ?? '127.0.0.1', port ?? 6379);
}

/**
 * Connects `client` (created with `lazyConnect`) and waits for `ready` to
 * answer, within the handshake timeout. Registers its disconnection as a cleanup.
 * @throws CliError naming `what` when it cannot connect.
 */
async function handshake<C extends CliRedis>(
  client: C,
  what: string,
  tls: boolean,
  ready: (c: C) => Promise<unknown>,
): Promise<C> {
  // Errors surface through the rejected commands; an unhandled 'error' event would print a stack.
  // The first error is not always the telling one: a web server on the port answers garbage
  // (a protocol error) and closes, and the close (EPIPE) may be reported first.
  const causes: unknown[] = [];
  client.on('error', (err: unknown) => {
    causes.push(causeOf(err));
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
    if (err instanceof CliError) throw err;
    const cause = causes.find((c) => /RESP type|protocol error/i.test(errorMessage(c))) ?? causes[0] ?? causeOf(err);
    throw new CliError(connectionFailure(what, cause, tls, await answerOf(client, cause, tls)));
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
  const what = `Redis at ${displayUrl(url)}`;
  return handshake(client, what, isTls(url), async (c) => {
    await c.ping();
    await checkPassword(c, url, what);
    await checkDatabase(c, url, what);
  });
}

function isTls(url: string): boolean {
  return url.startsWith('rediss:');
}

/**
 * The database index in a Redis URL's path (`redis://host:port/3`), undefined without one.
 * @throws CliError (exit code 2) when the path is not a database index.
 */
export function databaseOf(url: string): number | undefined {
  const path = new URL(url).pathname;
  if (path === '' || path === '/') return undefined;
  const db = path.slice(1);
  if (!/^\d{1,9}$/.test(db)) {
    throw new CliError(
      `invalid database ${JSON.stringify(db)} in the Redis URL: expected redis://host:port/N with N a database index (0 by default)`,
      2,
    );
  }
  return Number(db);
}

/**
 * Makes sure the client uses the URL's database: ioredis only emits an
 * 'error' when its SELECT fails and then runs every command on database 0,
 * so `/99` on a server with 16 databases would write to the wrong place.
 */
async function checkDatabase(client: Redis, url: string, what: string): Promise<void> {
  const db = databaseOf(url);
  if (db === undefined || db === 0) return;
  try {
    await client.select(db);
  } catch (err) {
    const msg = errorMessage(err);
    if (/cluster mode/i.test(msg)) {
      throw new CliError(`${what} is a Redis Cluster node, which has only database 0: remove /${db} from the URL`);
    }
    if (!/out of range|invalid DB index/i.test(msg)) throw err;
    const count = await client
      .call('CONFIG', 'GET', 'databases')
      .then((r) => Number(Array.isArray(r) ? (r[1] ?? (r[0] as unknown[] | undefined)?.[1]) : Number.NaN))
      .catch(() => Number.NaN);
    const has = Number.isInteger(count) && count > 0 ? `: it has ${count} (0 to ${count - 1})` : '';
    throw new CliError(`${what} has no database ${db}${has}: use redis://host:port/N with an existing N`);
  }
}

/**
 * Fails when the URL gives a password the server does not ask for: Redis
 * accepts any password for a user without one (HELLO AUTH default ...), so
 * a password meant for another server would pass unnoticed. `AUTH <password>`
 * alone is refused by a server without a password, with a message saying so.
 */
async function checkPassword(client: Redis, url: string, what: string): Promise<void> {
  const u = new URL(url);
  if (!u.password || (u.username !== '' && u.username !== 'default')) return;
  try {
    await client.call('AUTH', decodeURIComponent(u.password));
  } catch (err) {
    if (/without any password configured|no password is set/i.test(errorMessage(err))) {
      throw new CliError(
        `${what} has no password, but the URL gives one: remove it from the URL (redis://host:port), or check that this is the server you meant`,
      );
    }
    throw err;
  }
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
  return handshake(client, `Redis Cluster at ${displayUrl(url)}`, isTls(url), (c) => c.ping());
}

/** True when the server is a node of a Redis Cluster (`INFO cluster` says `cluster_enabled:1`); false when INFO is refused. */
export async function clusterEnabled(client: Redis): Promise<boolean> {
  try {
    return /^cluster_enabled:1\s*$/m.test(await client.info('cluster'));
  } catch {
    return false;
  }
}
