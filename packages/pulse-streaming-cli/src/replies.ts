/**
 * Shapes of raw Redis replies the program reads (`XINFO`, `XPENDING`,
 * `XRANGE`), in RESP2 (flat `[key, value, ...]` arrays) or RESP3 (maps).
 */

/** A reply value as a string ('' for null). */
export function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v === null || v === undefined) return '';
  return String(v);
}

/** A map reply as a record: a flat `[key, value, ...]` array (RESP2, ioredis' RESP3), `[[key, value], ...]` or an object. */
export function record(reply: unknown): Record<string, unknown> {
  if (reply === null || reply === undefined) return {};
  if (reply instanceof Map) return Object.fromEntries([...reply.entries()].map(([k, v]) => [text(k), v]));
  if (!Array.isArray(reply)) return typeof reply === 'object' ? { ...(reply as Record<string, unknown>) } : {};
  const out: Record<string, unknown> = {};
  if (Array.isArray(reply[0])) for (const pair of reply as unknown[][]) out[text(pair[0])] = pair[1];
  else for (let i = 0; i + 1 < reply.length; i += 2) out[text(reply[i])] = reply[i + 1];
  return out;
}

/** A reply value as a number (NaN when it is not one). */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === null || v === undefined) return Number.NaN;
  return Number(text(v));
}

/** A reply value as a number, or undefined for null/NaN (XINFO reports an unknown lag as nil). */
export function optionalNum(v: unknown): number | undefined {
  const n = num(v);
  return Number.isNaN(n) ? undefined : n;
}

/** A list reply as an array (empty for anything else). */
export function list(reply: unknown): unknown[] {
  return Array.isArray(reply) ? reply : [];
}

/** One stream entry: its ID and its field/value pairs, values kept as received. */
export interface RawEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, unknown>;
}

/** An `[id, [field, value, ...]]` entry (fields may also come as a map). */
export function entry(reply: unknown): RawEntry | undefined {
  if (!Array.isArray(reply) || reply.length < 2) return undefined;
  const fields = new Map<string, unknown>();
  const raw = reply[1];
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) fields.set(text(raw[i]), raw[i + 1]);
  } else {
    for (const [k, v] of Object.entries(record(raw))) fields.set(k, v);
  }
  return { id: text(reply[0]), fields };
}

/** The entries of an `XRANGE`/`XREVRANGE` reply. */
export function entryList(reply: unknown): RawEntry[] {
  const out: RawEntry[] = [];
  for (const e of list(reply)) {
    const parsed = entry(e);
    if (parsed) out.push(parsed);
  }
  return out;
}
