/**
 * `createDashboard()`: the dashboard as one Node request handler, so it
 * mounts anywhere Node's `(req, res)` works: `node:http`, Express and Fastify
 * (`app.use(path, handler)`: they strip the path before calling it) and
 * Hono's Node server (which passes the full URL: give `basePath`).
 *
 * Routes, under the base path: `/` the page, `/assets/*` its script and
 * styles, `/metrics` Prometheus text, `/api/*` JSON reads, server-sent events
 * and the POST actions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cluster, Redis } from 'ioredis';
import { InvalidArgumentError, PulseError } from 'pulse-streaming';
import { CliError, errorMessage } from '../errors.js';
import { deleteDeadAction, destroyAction, replayAction } from './actions.js';
import {
  type ApiContext,
  deadHead,
  deadLetter,
  deadLetters,
  entries,
  entry,
  NotFound,
  overview,
  pending,
  streamPage,
} from './api.js';
import { asset } from './assets.js';
import { manyStreamFigures, StreamNames } from './collect.js';
import { LIMITS, withDeadline } from './limits.js';
import { LiveConnections, liveSnapshots, liveTail } from './live.js';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';
import { RateHistory } from './rates.js';
import { refuseAction, refuseCrossSiteRead, securityHeaders } from './security.js';

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /**
   * The Redis to show: an ioredis `Redis` (one server) or `Cluster`, created
   * and owned by the caller (the dashboard never closes it). Live tails read
   * on connections duplicated from it. Give it a `commandTimeout` (the `ui`
   * command uses 10 s): reads and live snapshots answer an error after 5 s
   * without Redis, but their commands, and actions, wait as long as the client lets them.
   */
  redis: Redis | Cluster;
  /** Refuse every action (replay, delete, destroy) and hide them in the page. @defaultValue false */
  readOnly?: boolean;
  /** When set, actions need `Authorization: Bearer <token>` (the page asks for it). @defaultValue none: actions need no token */
  token?: string;
  /**
   * The path the dashboard is served under when the server passes it the
   * full URL (`node:http`, Hono): `'/dashboard'` serves `/dashboard/`,
   * `/dashboard/metrics`, ... Not needed where the framework strips the
   * mount path (Express and Fastify `use`), though it does no harm there.
   * @defaultValue `''` (the root)
   */
  basePath?: string;
}

/** A Node request handler with a way to stop what it runs in the background. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /**
   * Ends the live event streams and tails, resolving once their readers are
   * closed; a tail whose reader is still being created (Redis slow or down)
   * ends at once and its reader is closed when it exists, so close() never
   * waits for Redis. Requests for live streams after it get 503. The Redis
   * client stays open.
   */
  close(): Promise<void>;
}

/** Biggest JSON body of an action. */
const MAX_BODY = 64 * 1024;

function checkOptions(options: DashboardOptions): { basePath: string } {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('createDashboard needs an options object');
  const redis = options.redis as unknown as { call?: unknown; callBuffer?: unknown } | undefined;
  if (typeof redis?.call !== 'function' || typeof redis.callBuffer !== 'function') {
    throw new InvalidArgumentError('redis must be an ioredis Redis or Cluster client');
  }
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) {
    throw new InvalidArgumentError('token must be a non-empty string');
  }
  const base = options.basePath ?? '';
  if (typeof base !== 'string' || (base !== '' && !base.startsWith('/')) || /[?#\s]/.test(base)) {
    throw new InvalidArgumentError(`basePath must be empty or a path starting with /, got ${JSON.stringify(base)}`);
  }
  // As a request's path has it: percent-encoded (`/équipe` is `/%C3%A9quipe` there), or a base with
  // such a character matched no request (outside trial).
  const encoded = base === '' ? '' : new URL(base, 'http://localhost').pathname;
  return { basePath: encoded.replace(/\/+$/, '') };
}

/** An action's body over {@link MAX_BODY}: answered 413, and the connection is closed after it. */
class BodyTooLarge extends Error {
  constructor() {
    super(`request body too large: an action takes at most ${MAX_BODY / 1024} KiB of JSON`);
  }
}

/** The status of a failed request. */
function statusOf(err: unknown): number {
  if (err instanceof BodyTooLarge) return 413;
  if (err instanceof InvalidArgumentError) return 400;
  if (err instanceof NotFound || err instanceof CliError) return 404;
  if (err instanceof SyntaxError) return 400;
  return 500;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<unknown> {
  // A framework's body parser (express.json(), ...) may have read it already.
  const parsed = (req as { body?: unknown }).body;
  if (parsed !== undefined && !Buffer.isBuffer(parsed) && typeof parsed !== 'string') return Promise.resolve(parsed);
  if (req.readableEnded) return Promise.reject(new InvalidArgumentError('the request body was read before the dashboard got it'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    function onData(c: Buffer): void {
      size += c.length;
      if (size > MAX_BODY) tooLarge();
      else chunks.push(c);
    }
    // Too large: answered 413 rather than a reset connection, so the client sees why. The rest
    // of the body is read and dropped while the answer goes out; the connection then closes.
    function tooLarge(): void {
      req.removeListener('data', onData);
      req.resume();
      reject(new BodyTooLarge());
    }
    if (Number(req.headers['content-length']) > MAX_BODY) return tooLarge();
    req.on('data', onData);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        reject(new InvalidArgumentError('request body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

function serveAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
  const a = asset(name);
  if (a === undefined) {
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  const headers: Record<string, string> = {
    'Content-Type': a.type,
    ETag: a.etag,
    'Cache-Control': 'no-cache',
    Vary: 'Accept-Encoding',
  };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = a.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  if (gzip) headers['Content-Encoding'] = 'gzip';
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : gzip ? a.gzip : a.body);
}

/**
 * The URL of a request whose target is `target` (a path and query), taken as a path whatever it
 * holds: resolved against a base, `//public.example/api/destroy` was read as the URL of host
 * public.example and routed as `/api/destroy` (a path a proxy in front may refuse by its prefix),
 * and `//[` threw (a 500). A target that still does not parse is a 400.
 */
function requestUrl(target: string | undefined): URL {
  const t = target ?? '/';
  try {
    return new URL(`http://dashboard.invalid${t.startsWith('/') ? '' : '/'}${t}`);
  } catch {
    throw new InvalidArgumentError('bad request target');
  }
}

/**
 * Creates the dashboard's request handler for `options.redis`.
 * @throws InvalidArgumentError for a missing client or a bad option.
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const { basePath } = checkOptions(options);
  const client = options.redis;
  const readOnly = options.readOnly === true;
  const token = options.token;
  const ctx: ApiContext = { client, names: new StreamNames(client), rates: new RateHistory() };
  const live = new LiveConnections();

  // Maps, not object literals: a path like /toString must not find Object.prototype's members.
  const gets = new Map<string, (q: URLSearchParams) => Promise<unknown>>(
    Object.entries({
      'api/config': async () => ({ readOnly, tokenRequired: token !== undefined }),
      'api/overview': (q: URLSearchParams) => overview(ctx, q),
      'api/stream': (q: URLSearchParams) => streamPage(ctx, q),
      'api/entries': (q: URLSearchParams) => entries(ctx, q),
      'api/entry': (q: URLSearchParams) => entry(ctx, q),
      'api/pending': (q: URLSearchParams) => pending(ctx, q),
      'api/dead': (q: URLSearchParams) => deadLetters(ctx, q),
      'api/dead-head': (q: URLSearchParams) => deadHead(ctx, q),
      'api/dead-letter': (q: URLSearchParams) => deadLetter(ctx, q),
    }),
  );
  const posts = new Map<string, (body: unknown) => Promise<unknown>>(
    Object.entries({
      'api/replay': (b: unknown) => replayAction(client, b),
      'api/delete-dead': (b: unknown) => deleteDeadAction(client, b),
      'api/destroy': (b: unknown) => destroyAction(client, ctx.names, b),
    }),
  );

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // First: every answer has them, a refusal of the target too.
    securityHeaders(res);
    const url = requestUrl(req.url);
    let path = url.pathname;
    if (basePath !== '' && (path === basePath || path.startsWith(`${basePath}/`))) path = path.slice(basePath.length);
    const method = req.method ?? 'GET';
    if (path === '' || path === '/') {
      if (method !== 'GET' && method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return sendJson(res, 405, { error: `${method} not allowed` });
      }
      // The page links to its files relatively: it must be served from a URL that ends with a slash.
      const external = requestUrl((req as { originalUrl?: string }).originalUrl ?? req.url);
      if (!external.pathname.endsWith('/')) {
        // One leading slash: `//host` would send the browser to another site.
        res.writeHead(308, { Location: `${external.pathname.replace(/^\/+/, '/')}/${external.search}` });
        res.end();
        return;
      }
      return serveAsset(req, res, 'index.html');
    }
    const name = path.slice(1);
    if (method === 'GET' || method === 'HEAD') {
      if (name.startsWith('assets/')) return serveAsset(req, res, name.slice('assets/'.length));
      const crossSite = refuseCrossSiteRead(req);
      if (crossSite !== undefined) return sendJson(res, crossSite.status, { error: crossSite.message });
      if (name === 'metrics') {
        const all = ctx.names.fresh().then((names) => manyStreamFigures(client, names, true));
        const figures = await withDeadline(all, LIMITS.metricsMs);
        res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Cache-Control': 'no-store' });
        res.end(renderMetrics(figures));
        return;
      }
      if (name === 'api/live') return liveSnapshots(ctx, url.searchParams, req, res, live);
      if (name === 'api/tail') return await liveTail(ctx, url.searchParams, req, res, live);
      const get = gets.get(name);
      if (get !== undefined) return sendJson(res, 200, await withDeadline(get(url.searchParams), LIMITS.readMs));
    } else if (method === 'POST') {
      const post = posts.get(name);
      if (post !== undefined) {
        const refused = refuseAction(req, { readOnly, token });
        if (refused !== undefined) return sendJson(res, refused.status, { error: refused.message });
        return sendJson(res, 200, await post(await readBody(req)));
      }
    }
    const known = gets.has(name) || posts.has(name) || ['metrics', 'api/live', 'api/tail'].includes(name);
    if (known) {
      res.setHeader('Allow', posts.has(name) ? 'POST' : 'GET, HEAD');
      return sendJson(res, 405, { error: `${method} not allowed` });
    }
    sendJson(res, 404, { error: 'not found' });
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.end();
        return;
      }
      const status = statusOf(err);
      // The client may still be sending the body it was refused: no keep-alive after the answer.
      if (status === 413) res.setHeader('Connection', 'close');
      // Redis failures are PulseErrors or client errors: their first line says enough.
      const message = err instanceof PulseError || status !== 500 ? errorMessage(err) : `failed: ${errorMessage(err)}`;
      sendJson(res, status, { error: message });
    });
  };
  return Object.assign(handler, {
    close: (): Promise<void> => live.closeAll(),
  });
}
