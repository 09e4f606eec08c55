/**
 * Where a reader's cursor starts on a stream, and its loss ledger's base
 * (readerLoss.ts): read atomically with the start so that nothing is counted
 * twice or missed.
 */
import { evalScript } from './driver.js';
import { LossLedger, type ReadStream } from './readerLoss.js';
import { COUNT_CAP, countAhead, parseStartReply, readerPosition, type StartReply, startArgs } from './readerScripts.js';
import { sayIfStartAhead } from './redisClock.js';
import { toPulseError } from './redisErrors.js';
import { str } from './replies.js';
import type { ResolvedStart } from './start.js';
import { sayIfStartGap } from './startGap.js';
import type { StreamHandle } from './streamHandle.js';

/**
 * Most pages counted for a start inside a long stream (COUNT_CAP entries
 * each: 100,000 entries ahead of the start, a few hundred ms at most).
 * Beyond, the base is left to the first exact check.
 */
const MAX_START_PAGES = 100;
/** Counts started again when entries after the start were deleted during one. */
const START_COUNT_TRIES = 3;

/** The start of a stream's cursor, and its ledger. */
export async function startOf(stream: StreamHandle, start: ResolvedStart): Promise<ReadStream> {
  const at = start.kind === 'newest' ? '$' : start.id;
  await sayIfStartAhead(stream, start, 'reader');
  await sayIfStartGap(stream, start, 'reader');
  try {
    let reply = parseStartReply(await evalScript(stream.driver, readerPosition, [stream.key], startArgs(at)));
    for (let i = 1; reply.status === 'ok' && reply.why === 'long'; i++) {
      const base = await baseInPages(stream, reply);
      if (typeof base === 'number') {
        reply = { ...reply, base, why: '' };
        break;
      }
      // Too many pages: counting again would count as many (the base is left to the first exact check).
      if (base === 'long' || i >= START_COUNT_TRIES) break;
      reply = parseStartReply(await evalScript(stream.driver, readerPosition, [stream.key], startArgs(at)));
    }
    if (reply.status !== 'ok') {
      // Redis before 7.0: reading works, counting losses does not.
      const ledger = new LossLedger({ base: undefined, cursor: '' });
      ledger.disabled = true;
      return { stream, cursor: start.kind === 'newest' ? await lastId(stream) : start.id, ledger };
    }
    const { cursor, base, deleted, added, maxDeleted, lastGenerated: lastGen } = reply;
    // Only an existing key has a last generated ID.
    const missing = lastGen === '';
    return { stream, cursor, ledger: new LossLedger({ base, cursor, missing, deleted, added, maxDeleted, lastGen }) };
  } catch (err) {
    throw toPulseError(err, `read the position of stream ${stream.name}`);
  }
}

/**
 * The base of a start inside a long stream: `entries-added - ahead` then,
 * with `ahead` counted page by page over the entries after the start up to
 * the last one generated then (entries added since come after it). Exact
 * unless an entry after the start is deleted during the count ('changed':
 * worth counting again), or when there are too many to count ('long').
 */
async function baseInPages(stream: StreamHandle, start: StartReply): Promise<number | 'changed' | 'long'> {
  let ahead = 0;
  let from = start.cursor;
  for (let page = 0; page < MAX_START_PAGES; page++) {
    const args = [from, start.lastGenerated, COUNT_CAP, start.cursor, start.deleted];
    const r = (await evalScript(stream.driver, countAhead, [stream.key], args)) as unknown[];
    if (str(r[0]) !== 'ok') return 'changed';
    const n = Number(r[1]);
    ahead += n;
    if (n < COUNT_CAP) return start.added - ahead;
    from = str(r[2]);
  }
  return 'long';
}

/** The last entry's ID now; `0-0` for an empty stream (Redis before 7.0 only). */
async function lastId(stream: StreamHandle): Promise<string> {
  try {
    const last = await stream.driver.send(['XREVRANGE', stream.key, '+', '-', 'COUNT', 1], stream.key);
    const id = (Array.isArray(last) ? (last[0] as unknown[] | undefined) : undefined)?.[0];
    return id === undefined ? '0-0' : str(id);
  } catch (err) {
    throw toPulseError(err, `read last entry of stream ${stream.name}`);
  }
}
