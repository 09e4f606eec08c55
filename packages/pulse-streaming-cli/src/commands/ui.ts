/**
 * `ui`: serves the web dashboard (`createDashboard`) on 127.0.0.1:7400 by
 * default, until Ctrl-C. Bound to a loopback address, it also refuses
 * requests whose `Host` is not a loopback name, so a web page that rebinds
 * its own domain to 127.0.0.1 (DNS rebinding) cannot read or act through it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommandContext } from '../context.js';
import { createDashboard } from '../dashboard/index.js';
import { CliError } from '../errors.js';
import { shutdownSignal } from '../lifecycle.js';

/** Options of `ui`. */
export interface UiOptions {
  readonly host: string;
  readonly port: number;
  readonly readOnly?: boolean;
  readonly token?: string;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host) || host.endsWith('.localhost');
}

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

/** `ui`: the dashboard until Ctrl-C. */
export async function uiCommand(ctx: CommandContext, options: UiOptions): Promise<number> {
  if (options.token !== undefined && options.token === '') throw new CliError('--token must not be empty', 2);
  const { client } = await ctx.connect();
  const dashboard = createDashboard({
    redis: client,
    readOnly: options.readOnly === true,
    ...(options.token !== undefined ? { token: options.token } : {}),
  });
  const loopback = isLoopback(options.host);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (loopback && !isLoopback(hostName(req.headers.host))) {
      res.writeHead(421, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('this dashboard only answers to localhost names\n');
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
  process.stdout.write(`pulse-streaming dashboard: http://${urlHost(options.host)}:${port}/${fragment}\n`);
  if (!loopback && options.token === undefined && options.readOnly !== true) {
    ctx.note(
      `warning: listening on ${options.host} without --token or --read-only: anyone who reaches it can replay, delete and destroy`,
    );
  }
  ctx.note(`metrics: http://${urlHost(options.host)}:${port}/metrics  (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    if (shutdownSignal.aborted) resolve();
    else shutdownSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  await dashboard.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}
