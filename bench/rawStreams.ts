/**
 * Raw Redis Streams commands for the baselines: the same entries the library
 * writes (`n` = event name, `p` = payload), without the library.
 */
import { randomBytes } from 'node:crypto';
import type { BenchClient, Command } from './clients.js';

export const EVENT_NAME = 'ev';
export const BLOCK_MS = '5000';

/** The Redis key of a library stream, so raw and library streams look alike. */
export function streamKey(name: string): string {
  return `pulse:stream:${name}`;
}

/** A payload of `bytes` printable random bytes. */
export function makePayload(bytes: number): Buffer {
  return Buffer.from(randomBytes(bytes).toString('base64').slice(0, bytes), 'latin1');
}

export function xadd(key: string, payload: Buffer): Command {
  return ['XADD', key, '*', 'n', EVENT_NAME, 'p', payload];
}

/** Appends `count` events with pipelined XADDs, `window` per batch. */
export async function fill(client: BenchClient, key: string, count: number, payload: Buffer, window: number): Promise<void> {
  for (let done = 0; done < count; done += window) {
    const batch: Command[] = [];
    for (let i = 0; i < Math.min(window, count - done); i++) batch.push(xadd(key, payload));
    await client.pipeline(batch);
  }
}

export interface RawEntry {
  readonly id: string;
  readonly payload: Buffer | undefined;
}

/**
 * The per-stream entry lists of an XREAD/XREADGROUP reply, in any shape the
 * clients give: RESP2 `[[key, entries], ...]`, ioredis RESP3 flat
 * `[key, entries, ...]`, or a Map/object for node-redis RESP3. A timeout gives none.
 */
function perStreamEntries(reply: unknown): unknown[] {
  if (reply instanceof Map) return [...reply.values()];
  if (Array.isArray(reply)) {
    if (reply.length > 0 && !Array.isArray(reply[0])) return reply.filter((_, i) => i % 2 === 1);
    return reply.map((pair: unknown) => (Array.isArray(pair) ? pair[1] : undefined));
  }
  if (typeof reply === 'object' && reply !== null) return Object.values(reply);
  return [];
}

/** Entries of an XREAD/XREADGROUP reply. */
export function replyEntries(reply: unknown): RawEntry[] {
  const out: RawEntry[] = [];
  for (const entries of perStreamEntries(reply)) {
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as unknown[]) {
      if (!Array.isArray(entry)) continue;
      const fields: unknown = entry[1];
      // Entries written here and by the library start with `n <name> p <payload>`.
      const payload: unknown = Array.isArray(fields) ? fields[3] : undefined;
      out.push({ id: String(entry[0]), payload: Buffer.isBuffer(payload) ? payload : undefined });
    }
  }
  return out;
}
