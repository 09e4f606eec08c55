/**
 * Outside review AE (defect 2; line numbers as of commit b664c82): a reader whose start is past the stream's last generated
 * ID (`{ after: id }` of a saved cursor beyond the end, a Date ahead of now)
 * has an unknown loss-ledger base (readerScripts.ts start: 'future'); the
 * first exact check then takes the base "as if nothing was lost before it"
 * (readerLoss.ts LossLedger.apply: `this.#base = r.added - point.read - ahead
 * - this.lost`). Entries added after the start and trimmed before that first
 * check are therefore silently absorbed into the base: neither delivered nor
 * counted nor warned. The only warning for this window ('uncertain') looks at
 * max-deleted-entry-id, which XDEL sets but trimming (maxLen) does not; and
 * sayIfStartGap ran at the start, when nothing had been removed yet.
 *
 * Contract: API.md "Retention": "Nothing is lost silently ... events a sink
 * or a reader finds trimmed or deleted before it handled them are counted
 * (`reader.counters.lost`) and reported". API.md startAt `{ after }`: the
 * reader starts "at the first entry whose ID is greater": entries 101-0..
 * 105-0 below are all this reader's.
 *
 * Where (b664c82): readerScripts.ts:111 ('future', base -1), readerLoss.ts
 * LossLedger.apply (the `this.#base === undefined` branch: base taken, 'uncertain'
 * only when max-deleted-entry-id passed the start), startGap.ts (start only).
 *
 * Control: the same sequence with a start AT the last generated ID (known
 * base) counts the 3 trimmed entries.
 *
 * Failed before the fix: 7 of 7 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: a start past the last entry but before Redis' clock has a known base (readerScripts.ts, as for a missing key): later adds get later IDs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Event } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { readerSuite } from './support/readerSuite.js';

describe.each(CLIENT_KINDS)('losses after a start past the end (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const { newStream, newReader } = readerSuite(
    () => c,
    () => c,
  );

  for (const after of ['100-0', '10-0']) {
    it(`start { after: '${after}' } (last generated ID 10-0): entries after it trimmed before they were read are counted`, async () => {
      const s = newStream({ maxLen: 0 });
      for (let i = 1; i <= 10; i++) await c.cmd('XADD', s.key, `${i}-0`, 'n', 'e', 'p', `old${i}`);
      const reader = await newReader(s, { startAt: { after } });
      // A producer with an exact maxLen of 2 adds 5 entries after the start
      // (nothing is read yet: reading starts with subscribe).
      for (let i = 101; i <= 105; i++) await c.cmd('XADD', s.key, 'MAXLEN', '=', '2', `${i}-0`, 'n', 'e', 'p', `new${i}`);
      const got: Event[] = [];
      const sub = reader.subscribe();
      void (async () => {
        for await (const ev of sub) got.push(ev);
      })();
      await waitFor(() => got.length === 2, { timeout: 5000, what: 'the two entries left' });
      expect(got.map((e) => e.id)).toEqual(['104-0', '105-0']);
      await reader.close(); // counters are complete when close() resolves
      // 101-0, 102-0, 103-0 came after the start and were trimmed unread.
      // Observed with '100-0': lost 0, and no warning of any kind.
      expect(reader.counters).toEqual({ delivered: 2, lost: 3 });
    });
  }
});
