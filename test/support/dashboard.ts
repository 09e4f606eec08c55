/**
 * What the dashboard tests share: the handler served by node:http on a free
 * port, the system Chromium driven by playwright-core (never a downloaded
 * browser; tests skip with the reason when it is missing), screenshots for
 * the README when PULSE_SCREENSHOTS=1, and dead letters made the way the
 * library stores them.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import {
  createDashboard,
  type DashboardHandler,
  type DashboardOptions,
} from '../../packages/pulse-streaming-cli/src/dashboard/index.js';

/** Where Debian puts Chromium (`apt-get install chromium`, done by .ci/run). */
const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The system Chromium, or undefined (the browser tests then skip and say why). */
export const chromiumPath: string | undefined = process.env.PULSE_CHROMIUM ?? CHROMIUM_PATHS.find((p) => existsSync(p));

if (chromiumPath === undefined) {
  console.warn('dashboard browser tests skipped: no Chromium at /usr/bin/chromium (apt-get install chromium)');
}

/** Starts the system Chromium headless. */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath as string,
    headless: true,
    // Root in CI has no user namespaces for the sandbox; /dev/shm may be small.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** A dashboard served on 127.0.0.1. */
export interface ServedDashboard {
  /** Base URL, ending with a slash. */
  readonly url: string;
  readonly handler: DashboardHandler;
  close(): Promise<void>;
}

/** Serves `createDashboard(options)` with node:http on a free port of 127.0.0.1. */
export async function serveDashboard(options: DashboardOptions): Promise<ServedDashboard> {
  const handler = createDashboard(options);
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    handler,
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** GETs `path` of a served dashboard: the status and the JSON body. */
export async function getJson<T>(base: ServedDashboard, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base.url}${path}`);
  return { status: res.status, body: (await res.json()) as T };
}

/** Saves a screenshot of the viewport to docs/screenshots/<name>.png when PULSE_SCREENSHOTS=1 (so normal runs leave the tree alone). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.PULSE_SCREENSHOTS !== '1') return;
  await page.screenshot({
    path: new URL(`../../docs/screenshots/${name}.png`, import.meta.url).pathname,
    timeout: 30_000,
  });
}

/** Adds dead letters of `stream` as the library stores them; resolves to their IDs. */
export async function addDeadLetters(
  redis: Redis | Cluster,
  stream: string,
  letters: { event: string; payload: string; sink: string; sourceId: string }[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const l of letters) {
    const id = await redis.call(
      'XADD',
      `pulse:stream:${stream}:dead`,
      '*',
      'n',
      l.event,
      'p',
      l.payload,
      'source_stream',
      stream,
      'source_sink',
      l.sink,
      'source_id',
      l.sourceId,
      'deliveries',
      '3',
      'reason',
      'max deliveries reached',
    );
    ids.push(String(id));
  }
  return ids;
}

/** A test's `XINFO GROUPS` of a stream as records. */
export async function groupsOf(redis: Redis | Cluster, stream: string): Promise<Record<string, unknown>[]> {
  const reply = (await redis.call('XINFO', 'GROUPS', `pulse:stream:${stream}`)) as unknown[];
  return reply.map((g) => {
    const flat = g as unknown[];
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
    return out;
  });
}

/** The events of a server-sent event stream (a live page's), read in the background into `text()`. */
export function readEvents(url: string): { text: () => string; close: () => void } {
  const stop = new AbortController();
  let text = '';
  void fetch(url, { signal: stop.signal })
    .then(async (res) => {
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString('utf8');
      }
    })
    .catch(() => {});
  return { text: () => text, close: () => stop.abort() };
}
