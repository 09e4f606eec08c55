/**
 * What a stream is now (XINFO STREAM): for a sink that suspects its key was
 * deleted, expired or rolled back (entries ever added fall then), and for a
 * start behind trimmed entries (startGap.ts).
 */
import type { Connection } from './driver.js';
import { errorText } from './redisErrors.js';
import { mapRecord, str } from './replies.js';

/** What `streamNow` found. */
export interface StreamNow {
  /** Entries ever added (Infinity when the stream cannot be read: nothing is concluded from it). */
  readonly added: number;
  /** Its first entry's ID. */
  readonly first: string | undefined;
  /** Entries in it now (undefined when it cannot be read). */
  readonly length?: number | undefined;
  /** Its last-generated ID (undefined when it cannot be read). */
  readonly last?: string | undefined;
  /** The highest ID deleted from it (XDEL; '0-0' none; undefined when it cannot be read). */
  readonly maxDeleted?: string | undefined;
  /** False when the key is gone, undefined when the read failed otherwise. */
  readonly exists: boolean | undefined;
}

/** Stream `key` now (XINFO STREAM on `conn`). */
export async function streamNow(conn: Connection, key: string): Promise<StreamNow> {
  try {
    const info = mapRecord(await conn.send(['XINFO', 'STREAM', key], key));
    const added = Number(info['entries-added']);
    const first = Array.isArray(info['first-entry']) ? str(info['first-entry'][0]) : undefined;
    const id = (v: unknown) => (v === undefined || v === null ? undefined : str(v));
    const [last, maxDeleted] = [id(info['last-generated-id']), id(info['max-deleted-entry-id'])];
    const length = Number(info.length);
    return {
      added: Number.isFinite(added) ? added : Number.POSITIVE_INFINITY,
      first,
      length: Number.isFinite(length) ? length : undefined,
      last,
      maxDeleted,
      exists: true,
    };
  } catch (err) {
    // 'no such key' says the key is gone; any other failure says nothing.
    const gone = /no such key/i.test(errorText(err)) ? false : undefined;
    return { added: Number.POSITIVE_INFINITY, first: undefined, exists: gone };
  }
}
