/**
 * Outside review AE (defect 1; line numbers as of commit b664c82): `startAt: { after: id }` with an ID in a form that
 * `checkId` accepts and Redis reads fine, but that the reader's loss ledger
 * (readerScripts.ts, Lua `cmp` and `XRANGE - <at>`) misreads:
 *
 * - an ID without its sequence (`'1000'`, which XREAD reads as `1000-0`):
 *   the start script counts the entries "behind" the start with
 *   `XRANGE - 1000`, and an incomplete END of XRANGE means `1000-<max>`, so
 *   the entries `1000-1`, `1000-2`... that the reader does deliver are counted
 *   as behind it: the base is too high, and as many later losses go unreported;
 * - an ID with leading zeros (`'01000-0'`): Lua `cmp` compares the lengths of
 *   the millisecond parts first, so the start looks past the stream's last
 *   generated ID ('future'), the base is left to the first check, which takes
 *   everything lost before it as "never the reader's".
 *
 * Where (b664c82): start.ts:23 keeps the ID as given (`checkId`, not
 * `canonicalId` as deadLetters.ts:111 does); readerScripts.ts:125-130 counts
 * `XRANGE - <at>` as "behind"; lua.ts:9 compares lengths of non-canonical
 * parts; readerScripts.ts:111 then says 'future'.
 * The '1000-0' case is the control: it passes.
 *
 * Contract: API.md "Retention": "Nothing is lost silently ... events a sink or a
 * **reader** finds trimmed or deleted before it handled them are counted
 * (`reader.counters.lost`) and reported". SEMANTICS.md §4: "Readers deliver
 * every entry that still exists after their cursor". So for a reader started
 * after X, delivered + lost must equal the number of entries added after X.
 * `reader.counters` doc: "counters are complete when close() resolves".
 *
 * Failed before the fix: 7 of 7 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: `parseStart` (start.ts) makes an `{ after }` ID canonical, as dead letters' IDs are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Event } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { readerSuite } from './support/readerSuite.js';

describe.each(CLIENT_KINDS)('startAt { after } in other ID forms (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { newStream, newReader } = readerSuite(
    () => c,
    () => c,
  );

  /** Entries 999-0, 1000-0, 1000-1, 1000-2, 5000-0, 5000-1: four of them are after 1000-0. */
  async function sixEntries(key: string): Promise<void> {
    for (const id of ['999-0', '1000-0', '1000-1', '1000-2', '5000-0', '5000-1']) {
      await c.cmd('XADD', key, id, 'n', 'e', 'p', id);
    }
  }

  for (const after of ['1000', '01000-0', '1000-0']) {
    it(`{ after: '${after}' }: entries trimmed after the start before they were read are all counted lost`, async () => {
      const s = newStream({ maxLen: 0 });
      await sixEntries(s.key);
      const reader = await newReader(s, { startAt: { after } });
      // Before any read (reading starts with subscribe): trim exactly down to the last
      // entry. 1000-1, 1000-2 and 5000-0 were after the start and are gone unread.
      await c.cmd('XTRIM', s.key, 'MAXLEN', '1');
      const got: Event[] = [];
      const sub = reader.subscribe();
      void (async () => {
        for await (const ev of sub) got.push(ev);
      })();
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'the one entry left to be delivered' });
      expect(got.map((e) => e.id)).toEqual(['5000-1']);
      // close() waits for the last checks: the counters are complete then.
      await reader.close();
      // 4 entries were after 1000-0: 1 delivered, 3 trimmed unread.
      // Observed with '1000': lost 1 (2 silently missing); with '01000-0': lost 0 (3 missing).
      expect(reader.counters).toEqual({ delivered: 1, lost: 3 });
    });
  }
});
