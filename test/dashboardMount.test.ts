/**
 * `createDashboard()` mounted the ways the README shows: node:http (with
 * `basePath`), Express, Fastify (through @fastify/middie) and Hono's Node
 * server. Each mount serves the page (redirecting the bare mount path to the
 * one with a slash, so the page's relative links work), the JSON API,
 * `/metrics`, the live events and an action.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import middie from '@fastify/middie';
import { type HttpBindings, serve } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { createDashboard, type DashboardHandler } from '../packages/pulse-streaming-cli/src/dashboard/index.js';
import { sharedUrl, uniqueName } from './support/clients.js';
import { addDeadLetters } from './support/dashboard.js';

let redis: Redis;

beforeAll(() => {
  redis = new Redis(sharedUrl());
});

afterAll(() => {
  redis?.disconnect();
});

interface Mounted {
  /** Origin of the server, e.g. http://127.0.0.1:1234 */
  origin: string;
  dashboard: DashboardHandler;
  close(): Promise<void>;
}

function listening(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function closing(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const mounts: Record<string, () => Promise<Mounted>> = {
  'node:http': async () => {
    // README: node:http
    const dashboard = createDashboard({ redis, basePath: '/dashboard' });
    const server = createServer((req, res) => {
      const path = req.url?.split('?')[0];
      if (path === '/dashboard' || path?.startsWith('/dashboard/')) return dashboard(req, res);
      res.writeHead(404).end();
    });
    const origin = await listening(server);
    return { origin, dashboard, close: () => closing(server) };
  },
  Express: async () => {
    // README: Express
    const app = express();
    const dashboard = createDashboard({ redis });
    app.use('/dashboard', dashboard);
    const server = createServer(app);
    const origin = await listening(server);
    return { origin, dashboard, close: () => closing(server) };
  },
  'Express after express.json()': async () => {
    // An application's body parser runs first and consumes the body of the dashboard's actions.
    const app = express();
    app.use(express.json());
    const dashboard = createDashboard({ redis });
    app.use('/dashboard', dashboard);
    const server = createServer(app);
    const origin = await listening(server);
    return { origin, dashboard, close: () => closing(server) };
  },
  Fastify: async () => {
    // README: Fastify
    const app = Fastify();
    await app.register(middie);
    const dashboard = createDashboard({ redis });
    app.use('/dashboard', dashboard);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return {
      origin: `http://127.0.0.1:${port}`,
      dashboard,
      close: async () => {
        await dashboard.close();
        app.server.closeAllConnections();
        await app.close();
      },
    };
  },
  Hono: async () => {
    // README: Hono
    const dashboard = createDashboard({ redis, basePath: '/dashboard' });
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.all('/dashboard/*', (c) => {
      dashboard(c.env.incoming, c.env.outgoing);
      return RESPONSE_ALREADY_SENT;
    });
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, dashboard, close: () => closing(server) };
  },
};

/** Reads the first `event: snapshot` of an event stream, then stops reading. */
async function firstSnapshot(url: string): Promise<{ streams: { name: string }[] }> {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`event stream ended: ${text}`);
      text += Buffer.from(value).toString('utf8');
      const m = /event: snapshot\ndata: (.*)\n\n/.exec(text);
      if (m) return JSON.parse(m[1] as string);
    }
  } finally {
    ac.abort();
  }
}

describe.each(Object.keys(mounts))('mounted in %s', (kind) => {
  let m: Mounted;
  let stream: Stream;
  beforeAll(async () => {
    m = await (mounts[kind] as () => Promise<Mounted>)();
    stream = new Stream(uniqueName('mount'), redis);
    await stream.add('created', '{"id":1}');
  });
  afterAll(async () => {
    await m?.dashboard.close();
    await m?.close();
  });

  it('serves the page, its assets, the API, /metrics and live events under /dashboard', async () => {
    // With a query too (the README's node:http example answered 404 to /dashboard?x=1: outside trial).
    expect((await fetch(`${m.origin}/dashboard?x=1`, { redirect: 'manual' })).status).toBe(308);
    const bare = await fetch(`${m.origin}/dashboard`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/dashboard/');
    const page = await fetch(`${m.origin}/dashboard/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="assets/app.js">');
    expect((await fetch(`${m.origin}/dashboard/assets/app.css`)).status).toBe(200);
    const overview = (await (await fetch(`${m.origin}/dashboard/api/overview?q=${encodeURIComponent(stream.name)}`)).json()) as {
      streams: { name: string; length: number }[];
    };
    expect(overview.streams.map((s) => [s.name, s.length])).toEqual([[stream.name, 1]]);
    const metrics = await (await fetch(`${m.origin}/dashboard/metrics`)).text();
    expect(metrics).toContain(`pulse_stream_length{stream="${stream.name}"} 1`);
    const live = await firstSnapshot(`${m.origin}/dashboard/api/live?view=overview&q=${encodeURIComponent(stream.name)}`);
    expect(live.streams.map((s) => s.name)).toEqual([stream.name]);
  });

  it('runs an action (a POST with a JSON body)', async () => {
    const [id] = await addDeadLetters(redis, stream.name, [{ event: 'e', payload: kind, sink: 's', sourceId: '1-0' }]);
    const res = await fetch(`${m.origin}/dashboard/api/delete-dead`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: m.origin },
      body: JSON.stringify({ stream: stream.name, ids: [id] }),
    });
    expect(await res.json()).toEqual({ deleted: 1, missing: [] });
  });
});
