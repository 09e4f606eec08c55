/**
 * Outside review AC (defect 1; line numbers as of commit d0d99c9). An add
 * whose dedupId hit a record written with a shorter window recorded nothing,
 * so its longer window was applied to that check only: the hashes kept the
 * shorter window (dedupLua.ts DEDUP_RECORD ran `if nf > 0`, DEDUP_EXPIRY `if
 * deduped`), expired or rotated away after it, and the producer's retry
 * within its own window of the first add was added a second time: a
 * duplicate without a fault (API.md "Idempotent publish": an add whose
 * dedupId was added within the window adds nothing and resolves to the first
 * add's ID). README's own example: an operator's CLI add (2 minutes), then
 * the application's (10 minutes) and its retry.
 *
 * Failed before the fix: 5 of 5 runs for the reviewer (the expiry case), both clients; here both cases, 2 of 2.
 * Fixed: a call answered by a record with a window longer than the hashes keep writes that window (`SPAN_FIELD`) and their expiry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

/** The other producer's window (ms): the CLI's would be 2 minutes, too long for a test. */
const SHORT_MS = 400;

describe.each(CLIENT_KINDS)('a dedup hit by an add with a longer window (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** Until the server's clock is `ms` past the millisecond of entry `id` (lazy expiry is then certain). */
  const past = (id: string, ms: number) =>
    waitFor(
      async () => {
        const [sec, usec] = (await c.cmd('TIME')) as [string, string];
        return Number(sec) * 1000 + Math.floor(Number(usec) / 1000) >= Number(id.split('-')[0]) + ms;
      },
      { interval: 20, what: `${ms} ms past ${id}` },
    );

  function streams() {
    const name = uniqueName('dedupLongHit');
    // Another producer with a short window, and the application with a long one.
    const short = new Stream(name, c.redis, { maxLen: 0, dedupWindowMs: SHORT_MS });
    const app = new Stream(name, c.redis, { maxLen: 0, dedupWindowMs: 10 * 60_000 });
    return { short, app };
  }

  it("the application's retry after the short window has passed adds nothing (the hashes expired by it before)", async () => {
    const { short, app } = streams();
    try {
      const first = String(await short.add('order.created', 'from the other producer', { dedupId: 'order-1' }));
      // The application adds the same order: nothing added, the first ID.
      expect(await app.add('order.created', 'from the app', { dedupId: 'order-1' })).toBe(first);
      await past(first, SHORT_MS + 100);
      // Its retry (a timeout, a crash before it saw the answer), well within its own window of the first add.
      expect(await app.add('order.created', 'from the app, retried', { dedupId: 'order-1' })).toBe(first);
      expect(Number(await c.cmd('XLEN', app.key))).toBe(1);
    } finally {
      await app.destroy();
    }
  });

  it("the application's retry after the other producer's adds rotated the hashes twice adds nothing", async () => {
    const { short, app } = streams();
    try {
      const first = String(await short.add('order.created', 'from the other producer', { dedupId: 'order-1' }));
      expect(await app.add('order.created', 'from the app', { dedupId: 'order-1' })).toBe(first);
      // Each add of the other producer a short window after the last: by its window the current hash
      // is old enough to rotate (and the second rotation drops the hash holding order-1).
      const second = String(
        await past(first, SHORT_MS + 50).then(() => short.add('order.created', 'two', { dedupId: 'order-2' })),
      );
      await past(second, SHORT_MS + 50);
      await short.add('order.created', 'three', { dedupId: 'order-3' });
      expect(await app.add('order.created', 'from the app, retried', { dedupId: 'order-1' })).toBe(first);
      expect(Number(await c.cmd('XLEN', app.key))).toBe(3);
    } finally {
      await app.destroy();
    }
  });
});
