/**
 * Reply parsing for both clients and both protocols, in one place:
 * RESP2 and ioredis' RESP3 give `[[key, entries], ...]` or a flat
 * `[key, entries, ...]`, node-redis can give a Map or a plain object.
 */
import type { EventInit } from '../event.js';
import type { EventCodec } from './eventCodec.js';
import { setHeader } from './headers.js';
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC } from './keys.js';

export type RawEntry = [id: string, fields: Buffer[]];

const EMPTY = Buffer.alloc(0);
const NAME_BYTE = FIELD_NAME.charCodeAt(0);
const PAYLOAD_BYTE = FIELD_PAYLOAD.charCodeAt(0);
const TOPIC_BYTE = FIELD_TOPIC.charCodeAt(0);
/** `h.`: the prefix of header fields (headers.ts). */
const H_BYTE = 0x68;
const DOT_BYTE = 0x2e;

export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v === null || v === undefined) return '';
  return String(v);
}

export function buf(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v === null || v === undefined) return EMPTY;
  return Buffer.from(String(v), 'utf8');
}

/** `[key, value]` pairs of a map reply in any of its shapes. */
export function mapPairs(reply: unknown): Array<[string, unknown]> {
  if (reply === null || reply === undefined) return [];
  if (reply instanceof Map) return [...reply.entries()].map(([k, v]) => [str(k), v]);
  if (Array.isArray(reply)) {
    if (reply.length === 0) return [];
    if (Array.isArray(reply[0])) return reply.map((pair) => [str((pair as unknown[])[0]), (pair as unknown[])[1]]);
    const out: Array<[string, unknown]> = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([str(reply[i]), reply[i + 1]]);
    return out;
  }
  if (typeof reply === 'object') return Object.entries(reply as Record<string, unknown>);
  return [];
}

/** A map reply as a record (`XINFO` and friends). */
export function mapRecord(reply: unknown): Record<string, unknown> {
  return Object.fromEntries(mapPairs(reply));
}

/** The `{id, fields, count}` triples a claim script returns: the entries, and their delivery counts. */
export function countedEntries(reply: readonly unknown[]): { got: RawEntry[]; counts: number[] } {
  const got: RawEntry[] = [];
  const counts: number[] = [];
  for (const r of reply) {
    const [id, fields, n] = r as [unknown, unknown, unknown];
    got.push([str(id), Array.isArray(fields) ? fields.map(buf) : []]);
    counts.push(Number(n));
  }
  return { got, counts };
}

/**
 * Entries of an `XRANGE`/`XCLAIM` reply; entries deleted while pending (null
 * fields) are kept with no fields. Entries whose fields are Buffers already
 * (the driver asks for them) are turned into `RawEntry`s in place, and the
 * reply array is returned when every entry was: no array per entry on the
 * hot path (a reader of 100 readers' deliveries allocated ~94 bytes per
 * event here, a tenth of what it allocated beyond a raw `XREAD` loop, and
 * young-generation GC was most of that gap). The reply is the caller's own.
 */
export function entries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  let out: RawEntry[] | undefined;
  for (let i = 0; i < reply.length; i++) {
    const e: unknown = reply[i];
    const entry = Array.isArray(e) ? rawEntry(e) : undefined;
    if (entry === e && out === undefined) continue;
    // From the first entry not taken as it is: a new array, with those before it.
    out ??= reply.slice(0, i) as RawEntry[];
    if (entry) out.push(entry);
  }
  return out ?? (reply as RawEntry[]);
}

/** `e` as a RawEntry: itself, its ID made a string, when its fields are Buffers already; else a new one. */
function rawEntry(e: unknown[]): RawEntry {
  const raw = e[1];
  if (Array.isArray(raw) && e.length === 2 && (raw.length === 0 || Buffer.isBuffer(raw[0]))) {
    // Replies already hold Buffers (the driver asks for them, so a client
    // gives them for every field or for none): no copy on the hot path.
    e[0] = str(e[0]);
    return e as RawEntry;
  }
  const fields = Array.isArray(raw) ? raw.map(buf) : mapPairs(raw).flatMap(([k, v]) => [buf(k), buf(v)]);
  return [str(e[0]), fields];
}

/** Per-stream entries of an `XREAD`/`XREADGROUP` reply. */
export function streamEntries(reply: unknown): Array<[key: string, entries: RawEntry[]]> {
  return mapPairs(reply).map(([k, v]) => [k, entries(v)]);
}

/**
 * The last event name decoded, and its bytes: most streams carry a handful of
 * names, and comparing a few bytes in JS costs a fraction of decoding them
 * (a native call per event). A copy, so no reply buffer is kept alive.
 */
let lastNameBytes: Buffer = Buffer.alloc(0);
let lastName = '';
const NAME_CACHE_MAX = 64;

function decodeName(v: Buffer): string {
  const n = v.length;
  if (n === lastNameBytes.length) {
    let i = 0;
    while (i < n && v[i] === lastNameBytes[i]) i++;
    if (i === n) return lastName;
  }
  const name = v.toString('utf8');
  if (n <= NAME_CACHE_MAX) {
    lastNameBytes = Buffer.from(v);
    lastName = name;
  }
  return name;
}

/** The object {@link eventInit} fills and returns, again at every call. */
const INIT: EventInit & { complete: boolean } = {
  id: '',
  streamName: '',
  eventName: '',
  topic: undefined,
  payload: Buffer.alloc(0),
  deliveryCount: 1,
  headers: undefined,
  codec: undefined,
  complete: false,
};

/**
 * Reads `n`, `p`, `t` and the headers (`h.<name>`) into the fields of an
 * event; other fields are ignored. `codec`: the stream's, for `data`. The
 * object returned is the same at every call, valid until the next one: the
 * `Event` constructor copies it at once. A new object per event was about
 * 100 bytes of garbage per event on a sink's hot path (V8 could not elide it
 * there as it does in a reader's).
 */
export function eventInit(
  streamName: string,
  entry: RawEntry,
  deliveryCount = 1,
  codec?: EventCodec,
): EventInit & { complete: boolean } {
  const fields = entry[1];
  let eventName: string | undefined;
  let payload: Buffer | undefined;
  let topic: string | undefined;
  let headers: Record<string, string> | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const k = fields[i] as Buffer;
    if (k.length !== 1) {
      // Entries without headers (all of Go Pulse's) pay this one length check per extra field.
      if (k.length > 2 && k[0] === H_BYTE && k[1] === DOT_BYTE) {
        headers ??= {};
        setHeader(headers, k.toString('utf8', 2), (fields[i + 1] as Buffer).toString('utf8'));
      }
      continue;
    }
    const v = fields[i + 1] as Buffer;
    // Field names are one byte: compare bytes, not decoded strings.
    const c = k[0];
    if (c === NAME_BYTE) eventName = decodeName(v);
    else if (c === PAYLOAD_BYTE) payload = v;
    else if (c === TOPIC_BYTE) topic = v.length === 0 ? undefined : v.toString('utf8');
  }
  INIT.id = entry[0];
  INIT.streamName = streamName;
  INIT.eventName = eventName ?? '';
  INIT.topic = topic;
  INIT.payload = payload ?? EMPTY;
  INIT.deliveryCount = deliveryCount;
  INIT.headers = headers;
  INIT.codec = codec;
  INIT.complete = eventName !== undefined && payload !== undefined;
  return INIT;
}
