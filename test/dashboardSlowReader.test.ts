/**
 * The live tail to a page that stops reading (a laptop put to sleep with the
 * tab open, a stalled proxy): the dashboard must not buffer every entry in its
 * memory for as long as TCP keeps the connection. While the page does not
 * read, entries are counted as skipped, and the count reaches the page with
 * the first batch once it reads again. Found by review C
 * (revCdashboardSlowClient): the response's buffer grew by 1 MB a second.
 * Entries with 8 KB event names (sent whole, unlike payloads) so that,
 * without the fix, the kernel's socket buffers fill and the response's grows
 * within seconds.
 */
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, connect as tcpConnect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard } from '../packages/pulse-streaming-cli/src/dashboard/index.js';
import { uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('live tail to a page that stopped reading', { timeout: 60_000 }, () => {
  // A server of its own: the test writes 8 MB a second.
  let server: RedisServer;
  let redis: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('keeps the buffer small, counts entries as skipped, and says so when the page reads again', async ({ onTestFinished }) => {
    const name = uniqueName('slow-tail');
    onTestFinished(async () => {
      await redis.del(`pulse:stream:${name}`);
    });
    const dashboard = createDashboard({ redis });
    const responses: ServerResponse[] = [];
    const http = createServer((req, res) => {
      if (req.url?.startsWith('/api/tail')) responses.push(res);
      dashboard(req, res);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    onTestFinished(async () => {
      await dashboard.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    });
    const { port } = http.address() as AddressInfo;
    // A client that sends the request and then reads nothing.
    const sock = tcpConnect(port, '127.0.0.1');
    onTestFinished(() => {
      sock.destroy();
    });
    await new Promise<void>((r) => sock.once('connect', r));
    let received = '';
    sock.on('data', (d: Buffer) => {
      received += d.toString('utf8');
    });
    sock.pause();
    sock.write(`GET /api/tail?name=${name} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
    const res = await waitFor(() => responses[0], { what: 'the tail request' });

    // About 1,000 entries a second for 5 s: twice what the tail sends (100 every 200 ms, the
    // rest counted as skipped), few enough for its reader to read them all before trimming.
    const event = 'e'.repeat(8192);
    let most = 0;
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      const p = redis.pipeline();
      for (let i = 0; i < 10; i++) p.xadd(`pulse:stream:${name}`, 'MAXLEN', '~', '2000', '*', 'n', event, 'p', '{}');
      await Promise.all([p.exec(), new Promise((r) => setTimeout(r, 10))]);
      most = Math.max(most, res.writableLength);
    }
    // One batch (100 entries of about 8 KB) at most past the response's high-water mark.
    expect(most, `${(most / 1024 / 1024).toFixed(1)} MB buffered for a page that reads nothing`).toBeLessThan(2 * 1024 * 1024);

    // The page reads again: a batch says how many entries it did not get.
    sock.resume();
    await waitFor(() => [...received.matchAll(/"skipped":(\d+)/g)].some((m) => Number(m[1]) > 500), {
      timeout: 10_000,
      what: 'a batch that counts the skipped entries',
    });
  });
});
