/**
 * The dashboard's page when its server or Redis does not answer (outside trial, session 28; each
 * failed before its fix): the pending page kept its last figures for ever while Redis was stalled
 * (each 2 s poll dropped the one before, whose error came after 5 s); a live view the server refused
 * (too many open) stayed on "Loading…" without its reason; a stream page opened while Redis was
 * down kept its live tail "closed" after Redis came back. A browser gives up on an event stream
 * whose reply is not one; the page now asks why, says it, and opens it again.
 */
import { Redis } from 'ioredis';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { LIMITS } from '../packages/pulse-streaming-cli/src/dashboard/limits.js';
import { chromiumPath, launchBrowser, serveDashboard } from './support/dashboard.js';
import { RedisServer } from './support/redisServer.js';

describe.skipIf(chromiumPath === undefined)(
  'dashboard page when the server or Redis does not answer',
  { timeout: 90_000 },
  () => {
    // One browser for the file: each test opens its own pages.
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(() => browser?.close());

    it('the pending page says Redis did not answer instead of showing the last figures', async ({ onTestFinished }) => {
      const server = await RedisServer.start();
      onTestFinished(async () => {
        server.resume();
        await server.stop();
      });
      const redis = new Redis(server.url);
      onTestFinished(() => redis.disconnect());
      await new Stream('orders', redis).add('e', 'x');
      await redis.call('XGROUP', 'CREATE', 'pulse:stream:orders', 'billing', '0');
      await redis.call('XREADGROUP', 'GROUP', 'billing', 'w1', 'STREAMS', 'pulse:stream:orders', '>');
      // Its reads give up sooner than the 5 s default (the test waits for that), but later than the page's
      // 2 s poll: a page that polled every 2 s whatever happened dropped that error.
      const readMs = LIMITS.readMs;
      LIMITS.readMs = 2500;
      onTestFinished(() => {
        LIMITS.readMs = readMs;
      });
      const dash = await serveDashboard({ redis });
      onTestFinished(() => dash.close());
      const page = await browser.newPage();
      onTestFinished(() => page.close());
      await page.goto(`${dash.url}#/pending/orders/billing`);
      await page.locator('#pending-total', { hasText: '1' }).waitFor();
      server.pause();
      await page.locator('.error').waitFor({ timeout: 15_000 });
      expect(await page.locator('.error').textContent()).toMatch(/did not answer/);
    });

    it('a live view the server refuses says why, and opens once there is room', async ({ onTestFinished }) => {
      const server = await RedisServer.start();
      onTestFinished(() => server.stop());
      const redis = new Redis(server.url);
      onTestFinished(() => redis.disconnect());
      const liveMax = LIMITS.liveMax;
      LIMITS.liveMax = 1;
      onTestFinished(() => {
        LIMITS.liveMax = liveMax;
      });
      const dash = await serveDashboard({ redis });
      onTestFinished(() => dash.close());
      const first = await browser.newPage();
      onTestFinished(() => first.close());
      await first.goto(dash.url);
      await first.locator('#stream-count, .muted').first().waitFor();
      const second = await browser.newPage();
      onTestFinished(() => second.close());
      await second.goto(dash.url);
      await second.locator('.error').waitFor({ timeout: 10_000 });
      expect(await second.locator('.error').textContent()).toMatch(/live views are open/);
      // The first page goes: the second one's next try gets the room.
      await first.close();
      await second.locator('.error').waitFor({ state: 'detached', timeout: 20_000 });
    });

    it('a stream page opened while Redis is down goes live once it is back', async ({ onTestFinished }) => {
      const server = await RedisServer.start();
      onTestFinished(() => server.stop());
      const redis = new Redis(server.url, {
        maxRetriesPerRequest: 1,
        commandTimeout: 10_000,
        retryStrategy: (n) => Math.min(100 * n, 2000),
      });
      redis.on('error', () => {});
      onTestFinished(() => redis.disconnect());
      const stream = new Stream('orders', redis);
      await stream.add('e', 'before');
      const dash = await serveDashboard({ redis });
      onTestFinished(() => dash.close());
      await server.kill();
      const page = await browser.newPage();
      onTestFinished(() => page.close());
      await page.goto(`${dash.url}#/stream/orders`);
      const status = page.locator('#tail-status');
      // The tail could not start: said, and tried again.
      await status.filter({ hasText: /^reconnecting$/ }).waitFor({ timeout: 30_000 });
      await page.locator('#tail-problem').waitFor({ timeout: 30_000 });
      await server.restart();
      await stream.add('e', 'after the restart');
      await status.filter({ hasText: 'live' }).waitFor({ timeout: 40_000 });
      expect(await status.textContent()).toBe('live');
    });
  },
);
