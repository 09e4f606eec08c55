/**
 * The page's side of the JSON API: reads, actions (POST with a JSON body and,
 * when the server wants one, the token), and live updates over server-sent
 * events. URLs are relative to the page, so the dashboard works under any mount path.
 */
import { useEffect, useState } from 'preact/hooks';
import type { overview, pending, streamPage } from '../api.js';

export type { DeadLetterView } from '../api.js';
export type { EntryView, PayloadView } from '../payload.js';
export type { RatePoint } from '../rates.js';

export type Overview = Awaited<ReturnType<typeof overview>>;
export type StreamRow = Overview['streams'][number];
export type StreamPageData = Awaited<ReturnType<typeof streamPage>>;
export type PendingData = Awaited<ReturnType<typeof pending>>;

/** What the server allows. */
export interface Config {
  readOnly: boolean;
  tokenRequired: boolean;
}

const TOKEN_KEY = 'pulse-dashboard-token';

/** The token the operator entered (kept for this tab only). */
export function savedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function saveToken(token: string): void {
  if (token === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** A query string from defined values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  return q.toString();
}

async function parse<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => ({ error: `HTTP ${res.status}` }))) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

/** GET `api/<path>?<query>`. */
export async function get<T>(path: string, query: Record<string, string | number | undefined | null> = {}): Promise<T> {
  return parse<T>(await fetch(`api/${path}?${qs(query)}`, { headers: { Accept: 'application/json' } }));
}

/** POST an action: JSON body, and the token when one was entered. */
export async function act<T>(path: string, body: unknown): Promise<T> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const token = savedToken();
  if (token !== '') headers.Authorization = `Bearer ${token}`;
  return parse<T>(await fetch(`api/${path}`, { method: 'POST', headers, body: JSON.stringify(body) }));
}

/** State of a live view: the latest snapshot, or the error that stopped it. */
export interface Live<T> {
  data: T | undefined;
  error: string | undefined;
}

/** The JSON data of a server-sent event. */
export function eventData<T>(ev: Event): T {
  return JSON.parse((ev as MessageEvent<string>).data) as T;
}

/**
 * An EventSource at `url` that opens again when it closed for good. A
 * browser retries a dropped stream on its own, but gives up on one whose
 * reply is not an event stream: the server refused it (too many live views
 * open, a read that failed while Redis was down), or a proxy answered 502
 * while the dashboard restarted; the page then stayed on "Loading…" or its
 * last figures without a word (outside trial). `attach` adds the listeners
 * to each source opened; `closed` is told why (the reply's JSON `error`, or
 * its HTTP status) before the next try, 1 s later, then 2 s... up to 30 s
 * (back to 1 s once one opens). Returns the function that stops it.
 */
export function reopening(url: string, attach: (source: EventSource) => void, closed: (why: string) => void): () => void {
  let stopped = false;
  let source: EventSource | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let delay = 1000;
  const open = (): void => {
    const s = new EventSource(url);
    source = s;
    s.addEventListener('open', () => {
      delay = 1000;
    });
    s.addEventListener('error', () => {
      if (stopped || s.readyState !== EventSource.CLOSED) return;
      // Asked once more, plainly, for the reason: a reply that is an event stream after all is not kept.
      const ac = new AbortController();
      fetch(url, { headers: { Accept: 'application/json' }, signal: ac.signal })
        .then(async (res) => {
          if (res.ok) return ac.abort();
          const body = (await res.json().catch(() => ({}))) as { error?: unknown };
          if (!stopped) closed(typeof body.error === 'string' ? body.error : `HTTP ${res.status}`);
        })
        .catch(() => {
          if (!stopped && !ac.signal.aborted) closed('the dashboard does not answer');
        });
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    });
    attach(s);
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    source?.close();
  };
}

/** Subscribes to `api/live` snapshots while the component is mounted (opened again when closed: see {@link reopening}). */
export function useLive<T>(query: Record<string, string | number | undefined>): Live<T> {
  const [state, setState] = useState<Live<T>>({ data: undefined, error: undefined });
  const key = qs(query);
  useEffect(
    // The last snapshot stays on screen until the new query's first one arrives (no flicker while paging or searching).
    () =>
      reopening(
        `api/live?${key}`,
        (source) => {
          source.addEventListener('snapshot', (e) => setState({ data: eventData<T>(e), error: undefined }));
          source.addEventListener('failure', (e) => {
            const { error } = eventData<{ error: string }>(e);
            setState((s) => ({ data: s.data, error }));
          });
        },
        (error) => setState((s) => ({ data: s.data, error })),
      ),
    [key],
  );
  return state;
}
