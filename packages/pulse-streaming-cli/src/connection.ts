/**
 * Where the command-line program finds Redis: `--redis <url>`, else
 * `REDIS_URL`, else a throwaway embedded `redis-server`. The program's own
 * ioredis clients fail fast instead of retrying, so an unreachable server is
 * an error within about two seconds, never a hang. A node of a Redis Cluster
 * (`INFO cluster` says `cluster_enabled:1`, or `--cluster`) gets an ioredis
 * `Cluster` client instead of a plain one.
 */
import { type CliRedis, clusterEnabled, connectClient, connectClusterClient, databaseOf, displayUrl } from './clients.js';
import { EmbeddedRedis } from './embeddedRedis.js';
import { CliError } from './errors.js';
import { onCleanup, onExit } from './lifecycle.js';

export { displayUrl } from './clients.js';

/** Options every command accepts. */
export interface GlobalOptions {
  /** Redis URL given with `--redis`. */
  readonly redis?: string;
  /** Machine-readable output. */
  readonly json?: boolean;
  /** False with `--no-color`. */
  readonly color?: boolean;
  /** `--cluster`: the URL is a node of a Redis Cluster, without asking it. */
  readonly cluster?: boolean;
}

/** A connected Redis, with what it takes to open more clients to it. */
export interface RedisTarget {
  /** The program's main client: an ioredis `Cluster` when {@link RedisTarget.cluster}. */
  readonly client: CliRedis;
  readonly url: string;
  /** True when the URL is a node of a Redis Cluster. */
  readonly cluster: boolean;
  /** True when the program started the server itself (it is gone when the program exits). */
  readonly embedded: boolean;
  /** Opens (and registers for cleanup) another client to the same server. */
  newClient(name: string): Promise<CliRedis>;
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`invalid Redis URL ${JSON.stringify(url)}: expected redis://host:port`, 2);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new CliError(`invalid Redis URL ${JSON.stringify(url)}: expected redis://host:port or rediss://host:port`, 2);
  }
  // ioredis reads options from the query (?db=, ?password=...): past the checks of the database and
  // the password made on the URL's path and user part, and printed unmasked (outside trial).
  if (parsed.search !== '') {
    throw new CliError(
      `invalid Redis URL ${JSON.stringify(displayUrl(url))}: options in its query (${[...parsed.searchParams.keys()].join(', ')}) are not supported; give the database as redis://host:port/N and the password as redis://user:password@host:port`,
      2,
    );
  }
  databaseOf(url);
  return url;
}

/** Whether the user named a server (`--redis`, or a non-empty REDIS_URL): else commands use an embedded one. */
export function namesServer(options: GlobalOptions): boolean {
  const fromEnv = process.env.REDIS_URL;
  return options.redis !== undefined || (fromEnv !== undefined && fromEnv !== '');
}

/**
 * Connects to the server the user named, or starts an embedded one. `announce`
 * receives a note (for stderr) when the embedded server is used.
 */
export async function openTarget(options: GlobalOptions, announce: (note: string) => void): Promise<RedisTarget> {
  const fromEnv = process.env.REDIS_URL;
  let url: string;
  let embedded = false;
  if (options.cluster === true && options.redis === undefined && (fromEnv === undefined || fromEnv === '')) {
    throw new CliError('--cluster needs the URL of a cluster node: pass --redis redis://host:port or set REDIS_URL', 2);
  }
  if (options.redis !== undefined) url = checkUrl(options.redis);
  else if (fromEnv !== undefined && fromEnv !== '') url = checkUrl(fromEnv);
  else {
    const server = await EmbeddedRedis.start();
    onExit(() => server.stopSync());
    onCleanup(() => server.stop());
    url = server.url;
    embedded = true;
    announce(
      `using a throwaway redis-server on port ${server.port} (removed on exit); ` +
        'pass --redis redis://host:6379 or set REDIS_URL to use your own server',
    );
  }
  // A plain client first, even with --cluster: its errors name the cause (ECONNREFUSED, ...).
  const probe = await connectClient(url, 'pulse-cli');
  const cluster = !embedded && (options.cluster === true || (await clusterEnabled(probe)));
  if (!cluster) return { client: probe, url, embedded, cluster, newClient: (name) => connectClient(url, name) };
  probe.disconnect();
  const client = await connectClusterClient(url, 'pulse-cli');
  return { client, url, embedded, cluster: true, newClient: (name) => connectClusterClient(url, name) };
}
