/**
 * What a stream is now, for a sink that suspects its key was deleted or
 * expired and perhaps created anew: entries ever added fall when it was.
 */
import type { Connection } from './driver.js';
import { errorText } from './redisErrors.js';
import { mapRecord, str } from './replies.js';
import type { SinkStream } from './sinkState.js';

/** What `streamNow` found. */
export interface StreamNow {
  /** Entries ever added (Infinity when the stream cannot be read: nothing is concluded from it). */
  readonly added: number;
  /** Its first entry's ID. */
  readonly first: string | undefined;
  /** Its last-generated ID (undefined when it cannot be read). */
  readonly last?: string | undefined;
  /** The highest ID deleted from it (XDEL; '0-0' none; undefined when it cannot be read). */
  readonly maxDeleted?: string | undefined;
  /** False when the key is gone, undefined when the read failed otherwise. */
  readonly exists: boolean | undefined;
}

/** The stream's entries-added, first entry ID and last-generated ID now (XINFO STREAM on `conn`). */
export async function streamNow(conn: Connection, s: SinkStream): Promise<StreamNow> {
  try {
    const info = mapRecord(await conn.send(['XINFO', 'STREAM', s.stream.key], s.stream.key));
    const added = Number(info['entries-added']);
    const first = Array.isArray(info['first-entry']) ? str(info['first-entry'][0]) : undefined;
    const id = (v: unknown) => (v === undefined || v === null ? undefined : str(v));
    const [last, maxDeleted] = [id(info['last-generated-id']), id(info['max-deleted-entry-id'])];
    return { added: Number.isFinite(added) ? added : Number.POSITIVE_INFINITY, first, last, maxDeleted, exists: true };
  } catch (err) {
    // 'no such key' says the key is gone; any other failure says nothing.
    const gone = /no such key/i.test(errorText(err)) ? false : undefined;
    return { added: Number.POSITIVE_INFINITY, first: undefined, exists: gone };
  }
}
