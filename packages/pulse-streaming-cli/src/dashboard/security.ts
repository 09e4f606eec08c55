/**
 * Who may change data through the dashboard. Reads are open to whoever
 * reaches the handler, except a browser's cross-site requests (`Sec-Fetch-Site:
 * cross-site`: another site's page, which could not read the answer but could
 * make an operator's browser load a busy Redis); actions (replay, delete, destroy) are POSTs that pass
 * every check below, so a page of another origin cannot trigger them:
 * - not in read-only mode;
 * - `Content-Type: application/json`, which a cross-origin form or a
 *   "simple" fetch cannot send without a CORS preflight this handler never
 *   grants;
 * - `Sec-Fetch-Site`, when the browser sends it, is `same-origin`, and
 *   `Origin`, when present, names the host the request was sent to (`Host`,
 *   or `X-Forwarded-Host` behind a proxy);
 * - with a token, `Authorization: Bearer <token>` (compared in constant time).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Why an action was refused: the HTTP status and a message for the page. */
export interface Refusal {
  status: 401 | 403 | 415;
  message: string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The refusal of an action request, or undefined when it may proceed. */
export function refuseAction(
  req: IncomingMessage,
  options: { readOnly: boolean; token: string | undefined },
): Refusal | undefined {
  if (options.readOnly) return { status: 403, message: 'the dashboard is read-only' };
  const type = header(req, 'content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) return { status: 415, message: 'actions need Content-Type: application/json' };
  const site = header(req, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return { status: 403, message: 'cross-origin request refused' };
  const origin = header(req, 'origin');
  // Behind a reverse proxy the browser's host arrives as X-Forwarded-Host (a page of another
  // origin cannot set that header without a preflight, which this handler never grants).
  if (origin !== undefined && !sameHost(origin, header(req, 'host')) && !sameHost(origin, header(req, 'x-forwarded-host'))) {
    return { status: 403, message: 'cross-origin request refused' };
  }
  if (options.token !== undefined) {
    const auth = header(req, 'authorization') ?? '';
    const given = /^Bearer (.+)$/i.exec(auth)?.[1] ?? '';
    // Hashes have one length, so the comparison takes the same time whatever was sent.
    if (!timingSafeEqual(digest(given), digest(options.token))) {
      return { status: 401, message: 'this action needs the dashboard token (Authorization: Bearer <token>)' };
    }
  }
  return undefined;
}

/**
 * The refusal of a read that reaches Redis (`/metrics`, `api/*`) sent by a
 * browser for a page of another site, or undefined. Same-site pages and
 * clients that are not browsers (Prometheus, curl: no `Sec-Fetch-Site`) read freely.
 */
export function refuseCrossSiteRead(req: IncomingMessage): Refusal | undefined {
  return header(req, 'sec-fetch-site') === 'cross-site' ? { status: 403, message: 'cross-site request refused' } : undefined;
}

function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || origin === 'null') return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * The content security policy of every response: only the dashboard's own
 * script and styles, no inline script, no framing. Payloads are rendered as
 * text anyway; this is the second lock.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Sets the headers every dashboard response carries. */
export function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}
