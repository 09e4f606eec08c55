/**
 * `ui`: serves the web dashboard (`createDashboard`) on 127.0.0.1:7400 by
 * default, until Ctrl-C. Bound to a loopback address, it also refuses
 * requests whose `Host` is not a loopback name, so a web page that rebinds
 * its own domain to 127.0.0.1 (DNS rebinding) cannot read or act through it;
 * bound beyond, it answers to IP addresses, this machine's name and the names
 * of `--allowed-host` only, for the same reason.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { hostname } from 'node:os';
import { Cluster, Redis } from 'ioredis';
import type { RedisTarget } from '../connection.js';
import type { CommandContext } from '../context.js';
import { createDashboard } from '../dashboard/index.js';
import { CliError } from '../errors.js';
import { jsonText } from '../format.js';
import { onCleanup, shutdownSignal } from '../lifecycle.js';

/** Options of `ui`. */
export interface UiOptions {
  readonly host: string;
  readonly port: number;
  readonly readOnly?: boolean;
  readonly token?: string;
  /** Host names it answers to besides IP addresses, loopback names and this machine's name (`*`: any). */
  readonly allowedHost?: readonly string[];
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host) || host.endsWith('.localhost');
}

/**
 * Whether a request to a dashboard bound beyond loopback names a host it may
 * answer to: an IP address, a loopback name, this machine's name, or one of
 * `allowed` (`*`: any). Another name is a DNS name pointed at this machine by
 * someone else, the DNS rebinding a page of theirs would use to read through
 * the operator's browser (reads need no token).
 */
function answersTo(name: string, allowed: ReadonlySet<string>): boolean {
  if (allowed.has('*') || allowed.has(name) || isLoopback(name)) return true;
  if (isIP(name.replace(/^\[|\]$/g, '')) !== 0) return true;
  const me = hostname().toLowerCase();
  return name === me || name === me.split('.')[0];
}

/** Addresses that listen on every interface: no browser opens them. */
const ANY_ADDRESS: Readonly<Record<string, string>> = { '0.0.0.0': '127.0.0.1', '::': '::1', '[::]': '::1' };

/** The host name of a `Host` header, without its port. */
function hostName(header: string | undefined): string {
  if (header === undefined) return '';
  const h = header.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.replace(/:\d+$/, '');
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Longest wait between two reconnection attempts while Redis is away. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** Longest wait for one command of the dashboard's client (its tails read on duplicates without it). */
const COMMAND_TIMEOUT_MS = 10_000;

/**
 * The dashboard's own client. Unlike the other commands' fail-fast clients,
 * it reconnects: a dashboard left open outlives a Redis restart, showing the
 * error meanwhile. Commands still fail fast while Redis is away (one retry),
 * and time out when it is there but does not answer (stopped, stuck in a
 * script, packets dropped), so a page never hangs on them and commands do not
 * pile up.
 */
function reconnectingClient(target: RedisTarget): Redis | Cluster {
  const retryStrategy = (attempt: number): number => Math.min(100 * attempt, MAX_RECONNECT_DELAY_MS);
  const common = {
    connectionName: 'pulse-ui',
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: COMMAND_TIMEOUT_MS,
  };
  let client: Redis | Cluster;
  if (target.cluster) {
    const u = new URL(target.url);
    client = new Cluster([{ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) }], {
      clusterRetryStrategy: retryStrategy,
      redisOptions: {
        ...common,
        ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
        ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
        ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    });
  } else {
    client = new Redis(target.url, { ...common, retryStrategy });
  }
  // Failures surface in the page through the rejected commands; an unhandled 'error' event would crash.
  client.on('error', () => {});
  onCleanup(() => client.disconnect());
  return client;
}

/** `ui`: the dashboard until Ctrl-C. */
export async function uiCommand(ctx: CommandContext, options: UiOptions): Promise<number> {
  if (options.token !== undefined && options.token === '') throw new CliError('--token must not be empty', 2);
  // Connecting first checks the URL and starts the throwaway server when there is none.
  const target = await ctx.connect();
  const dashboard = createDashboard({
    redis: reconnectingClient(target),
    readOnly: options.readOnly === true,
    ...(options.token !== undefined ? { token: options.token } : {}),
  });
  const loopback = isLoopback(options.host);
  const allowed = new Set((options.allowedHost ?? []).map((h) => h.toLowerCase()));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const name = hostName(req.headers.host);
    if (loopback ? !isLoopback(name) : !answersTo(name, allowed)) {
      res.writeHead(421, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(
        loopback
          ? 'this dashboard only answers to localhost names\n'
          : `this dashboard does not answer to the host name ${JSON.stringify(name)}: start it with --allowed-host ${name || '<name>'} to allow it\n`,
      );
      return;
    }
    dashboard(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new CliError(`cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`)),
    );
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const fragment = options.token === undefined ? '' : `#token=${encodeURIComponent(options.token)}`;
  // Listening on every interface: the URL printed is this machine's loopback one, which opens here.
  const shown = ANY_ADDRESS[options.host] ?? options.host;
  const url = `http://${urlHost(shown)}:${port}/`;
  // --json: one object on one line of stdout, for a script that starts it (with --port 0, the port
  // it got) and reads its first line; the notes stay on stderr.
  if (ctx.json)
    process.stdout.write(`${jsonText({ url: `${url}${fragment}`, metrics: `${url}metrics`, host: options.host, port })}\n`);
  else process.stdout.write(`pulse-streaming dashboard: ${url}${fragment}\n`);
  if (shown !== options.host)
    ctx.note(`listening on every interface (${options.host}): from elsewhere, use this machine's address`);
  if (!loopback && options.token === undefined && options.readOnly !== true) {
    ctx.note(
      `warning: listening on ${options.host} without --token or --read-only: anyone who reaches it can replay, delete and destroy`,
    );
  }
  if (!ctx.json) ctx.note(`metrics: ${url}metrics  (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    if (shutdownSignal.aborted) resolve();
    else shutdownSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  await dashboard.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}
