/**
 * The dashboard page in Chromium against data it must survive and operators
 * working at once (review C):
 * - an entry ID whose time is past what a JS Date holds (`9000000000000000-0`:
 *   Redis takes any 64-bit number, e.g. a producer's nanoseconds) made the
 *   page throw "Invalid time value": neither the other entries nor the dead
 *   letters showed. Such a time shows as its milliseconds;
 * - deleting dead letters another operator replayed meanwhile said they were
 *   all deleted: the page says how many were deleted and how many were gone;
 * - "Replay all" replays every dead letter, those of other pages too: it asks first.
 */
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';
import { addDeadLetters, chromiumPath, launchBrowser, type ServedDashboard, serveDashboard } from './support/dashboard.js';

/** Past JS Date's range (8.64e15 ms), well within Redis's (2^64 - 1). */
const FAR_ID = '9000000000000000-0';

describe
  .skipIf(chromiumPath === undefined)
  .concurrent('dashboard page with hostile data and two operators', { timeout: 30_000 }, () => {
    let redis: Redis;
    let browser: Browser;
    let dash: ServedDashboard;
    beforeAll(async () => {
      redis = new Redis(sharedUrl());
      [browser, dash] = await Promise.all([launchBrowser(), serveDashboard({ redis })]);
    });
    afterAll(async () => {
      await browser?.close();
      await dash?.close();
      redis?.disconnect();
    });

    /** A page whose errors and dialogs are recorded; `confirm` is its answer to confirmations. */
    async function open(hash: string, onFinished: (fn: () => Promise<void>) => void, confirm = true) {
      const page: Page = await browser.newPage();
      onFinished(() => page.close());
      page.setDefaultTimeout(5000);
      const errors: string[] = [];
      const dialogs: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void (confirm ? d.accept() : d.dismiss());
      });
      await page.goto(`${dash.url}${hash}`);
      return { page, errors, dialogs };
    }

    const cleanup = (name: string) => async () => {
      await redis.del(`pulse:stream:${name}`, `pulse:stream:${name}:dead`);
    };

    it('shows the entries and dead letters of a stream with a far-future entry ID', async ({ onTestFinished }) => {
      const name = uniqueName('far-id');
      onTestFinished(cleanup(name));
      await redis.xadd(`pulse:stream:${name}`, '1-0', 'n', 'ok', 'p', 'first');
      await redis.xadd(`pulse:stream:${name}`, FAR_ID, 'n', 'far', 'p', 'second');
      const [dead] = await addDeadLetters(redis, name, [{ event: 'd', payload: 'x', sink: 's', sourceId: '1-0' }]);
      await redis.xadd(`pulse:stream:${name}:dead`, FAR_ID, 'n', 'far', 'p', 'y', 'source_stream', name, 'source_sink', 's');
      const { page, errors } = await open(`#/stream/${encodeURIComponent(name)}`, onTestFinished);
      await page.locator('#entries').getByText('1-0', { exact: true }).waitFor();
      await page.locator('#entries').getByText('9000000000000000 ms').waitFor();
      await page.goto(`${dash.url}#/dead/${encodeURIComponent(name)}`);
      await page
        .locator('#dead-letters')
        .getByText(dead as string)
        .waitFor();
      await page.locator(`li[data-id="${FAR_ID}"]`).getByText('9000000000000000 ms').waitFor();
      expect(errors).toEqual([]);
    });

    it('says how many dead letters it deleted and how many another operator replayed meanwhile', async ({ onTestFinished }) => {
      const name = uniqueName('gone-dead');
      onTestFinished(cleanup(name));
      const ids = await addDeadLetters(
        redis,
        name,
        [1, 2, 3].map((n) => ({ event: 'e', payload: String(n), sink: 's', sourceId: `${n}-0` })),
      );
      const { page } = await open(`#/dead/${encodeURIComponent(name)}`, onTestFinished);
      for (const id of ids) await page.locator(`li[data-id="${id}"] input[type=checkbox]`).check();
      // Operator A replays two of them (another tab, the CLI) before B clicks delete.
      const replay = await fetch(`${dash.url}api/replay`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ stream: name, ids: ids.slice(0, 2) }),
      });
      expect(replay.status).toBe(200);
      await page.locator('#delete-selected').click();
      await page
        .locator('#notice', { hasText: 'deleted 1 dead letter; 2 already gone (replayed or deleted meanwhile)' })
        .waitFor();
    });

    it('asks before "Replay all", and replays nothing when the operator declines', async ({ onTestFinished }) => {
      const name = uniqueName('replay-all');
      onTestFinished(cleanup(name));
      const [id] = await addDeadLetters(redis, name, [{ event: 'e', payload: '1', sink: 's', sourceId: '1-0' }]);
      const declined = await open(`#/dead/${encodeURIComponent(name)}`, onTestFinished, false);
      await declined.page.locator(`li[data-id="${id}"]`).waitFor();
      await declined.page.locator('#replay-all').click();
      await waitFor(() => declined.dialogs.length > 0, { what: 'a confirmation' });
      expect(declined.dialogs).toEqual([`Replay every dead letter of ${name} into it?`]);
      expect(Number(await redis.call('XLEN', `pulse:stream:${name}:dead`))).toBe(1);
      const accepted = await open(`#/dead/${encodeURIComponent(name)}`, onTestFinished, true);
      await accepted.page.locator(`li[data-id="${id}"]`).waitFor();
      await accepted.page.locator('#replay-all').click();
      await accepted.page.locator('#notice', { hasText: 'replayed 1 dead letter' }).waitFor();
      expect(Number(await redis.call('XLEN', `pulse:stream:${name}:dead`))).toBe(0);
    });
  });
