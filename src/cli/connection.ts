/**
 * Where the command-line program finds Redis: `--redis <url>`, else
 * `REDIS_URL`, else a throwaway embedded `redis-server`. The program's own
 * ioredis clients fail fast instead of retrying, so an unreachable server is
 * an error within about two seconds, never a hang.
 */
import { Redis } from 'ioredis';
import { EmbeddedRedis } from './embeddedRedis.js';
import { CliError, errorMessage } from './errors.js';
import { onCleanup, onExit } from './lifecycle.js';

/** Options every command accepts. */
export interface GlobalOptions {
  /** Redis URL given with `--redis`. */
  readonly redis?: string;
  /** Machine-readable output. */
  readonly json?: boolean;
  /** False with `--no-color`. */
  readonly color?: boolean;
}

/** A connected Redis, with what it takes to open more clients to it. */
export interface RedisTarget {
  /** The program's main client. */
  readonly client: Redis;
  readonly url: string;
  /** True when the program started the server itself (it is gone when the program exits). */
  readonly embedded: boolean;
  /** Opens (and registers for cleanup) another client to the same server. */
  newClient(name: string): Promise<Redis>;
}

const CONNECT_TIMEOUT_MS = 2000;
/** Connect plus the first answer. */
const HANDSHAKE_TIMEOUT_MS = 3000;
// Longer than any blocking read the program runs (5 s), so reads are never cut short.
const COMMAND_TIMEOUT_MS = 15_000;

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
  return url;
}

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
 * Connects a new ioredis client that fails fast: connect timeout ~2 s, one
 * attempt per command, no reconnection. Registers its disconnection as a cleanup.
 * @throws CliError when the server cannot be reached.
 */
export async function connectClient(url: string, name: string): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    connectionName: name,
  });
  // Errors surface through the rejected commands; an unhandled 'error' event would print a stack.
  let cause: unknown;
  client.on('error', (err: unknown) => {
    cause ??= err;
  });
  const unregister = onCleanup(() => client.disconnect());
  let timer: NodeJS.Timeout | undefined;
  try {
    // connectTimeout covers the TCP connect only: a server that accepts but never answers is caught here.
    const answered = client.connect().then(() => client.ping());
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s`)), HANDSHAKE_TIMEOUT_MS);
    });
    answered.catch(() => {});
    await Promise.race([answered, silent]);
  } catch (err) {
    unregister();
    client.disconnect();
    throw new CliError(`cannot connect to Redis at ${displayUrl(url)}: ${errorMessage(cause ?? err)}`);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/**
 * Connects to the server the user named, or starts an embedded one. `announce`
 * receives a note (for stderr) when the embedded server is used.
 */
export async function openTarget(options: GlobalOptions, announce: (note: string) => void): Promise<RedisTarget> {
  const fromEnv = process.env.REDIS_URL;
  let url: string;
  let embedded = false;
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
  const client = await connectClient(url, 'pulse-cli');
  return { client, url, embedded, newClient: (name) => connectClient(url, name) };
}
