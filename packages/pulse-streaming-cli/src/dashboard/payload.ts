/**
 * Payloads and entries as the dashboard's JSON API sends them. A payload is
 * sent as text when it is valid UTF-8 without control characters, else as
 * base64 (the page shows bytes as hex), and cut to a preview so that a page
 * of 1 MB payloads stays small; the page fetches the whole payload on "show all".
 */
import { payloadText } from '../format.js';
import { type RawEntry, text } from '../replies.js';

/** Bytes of a payload sent in lists; "show all" fetches the rest. */
export const PREVIEW_BYTES = 2048;

/** A payload in the API: exactly one of `text` and `base64`. */
export interface PayloadView {
  /** Size of the whole payload in bytes. */
  size: number;
  /** True when only the first bytes are included. */
  truncated: boolean;
  text?: string;
  base64?: string;
}

/** Cuts `bytes` to at most `max` bytes without splitting a UTF-8 character. */
function cut(bytes: Buffer, max: number): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * The payload for the API, cut to `max` bytes (Infinity: all of it). `size`
 * is the whole payload's when `payload` is already a cut one (see {@link PREVIEW_SIZE_FIELD}).
 */
export function payloadView(payload: Buffer, max: number = PREVIEW_BYTES, size: number = payload.length): PayloadView {
  const part = cut(payload, max);
  const truncated = part.length < size;
  const asText = payloadText(part);
  return asText === undefined ? { size, truncated, base64: part.toString('base64') } : { size, truncated, text: asText };
}

/**
 * Field a preview read adds to an entry: the size of its whole payload. Not
 * a name pulse writes (`n`, `p`, `t`, `h.*`), nor one Go Pulse does.
 */
export const PREVIEW_SIZE_FIELD = 'pulse-dashboard:payload-size';

/**
 * `XREVRANGE key ARGV[1] - COUNT ARGV[2]` (or, with ARGV[4] = 'forward',
 * `XRANGE key ARGV[1] + COUNT ARGV[2]`) whose payloads the server cuts to
 * ARGV[3] bytes, adding each one's whole size, so a page of 1 MB payloads
 * sends kilobytes. Keyed, so a cluster client sends it to the key's master.
 */
export const PREVIEW_RANGE = `
local entries
if ARGV[4] == 'forward' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
else
  entries = redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', ARGV[2])
end
local keep = tonumber(ARGV[3])
for _, e in ipairs(entries) do
  local f = e[2]
  local n = #f
  for i = 1, n, 2 do
    if f[i] == 'p' then
      local p = f[i + 1]
      f[i + 1] = string.sub(p, 1, keep)
      f[#f + 1] = '${PREVIEW_SIZE_FIELD}'
      f[#f + 1] = tostring(#p)
    end
  end
end
return entries`;

/** One stream entry in the API. */
export interface EntryView {
  id: string;
  /** Milliseconds of the ID. */
  time: number;
  event: string;
  topic: string | null;
  headers: Record<string, string>;
  payload: PayloadView;
}

/** An entry read with `callBuffer` (every name and value a Buffer), for the API. */
export function entryView(e: RawEntry, max: number = PREVIEW_BYTES): EntryView {
  // defineProperty: a header named `__proto__` (a valid name) must be an own property, not the object's prototype.
  const headers: Record<string, string> = {};
  for (const [k, v] of e.fields)
    if (k.startsWith('h.'))
      Object.defineProperty(headers, k.slice(2), { value: text(v), enumerable: true, writable: true, configurable: true });
  const topic = text(e.fields.get('t'));
  const p = e.fields.get('p');
  const whole = e.fields.get(PREVIEW_SIZE_FIELD);
  return {
    id: e.id,
    time: Number(e.id.split('-')[0]),
    event: text(e.fields.get('n')),
    topic: topic === '' ? null : topic,
    headers,
    payload: payloadView(
      Buffer.isBuffer(p) ? p : Buffer.from(text(p)),
      max,
      whole === undefined ? undefined : Number(text(whole)),
    ),
  };
}
