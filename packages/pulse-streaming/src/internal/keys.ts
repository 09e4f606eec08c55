/**
 * The key layout. Stream keys follow Go Pulse (`pulse:stream:<name>`) so both
 * share streams; the library's own bookkeeping keys carry a hash tag that puts
 * them in the stream key's cluster slot.
 */
import { slotOf } from './slot.js';

const STREAM_PREFIX = 'pulse:stream:';

/** Redis key of a stream. */
export function streamKey(name: string): string {
  return STREAM_PREFIX + name;
}

/** Stream name of a stream key, or undefined when the key is not a pulse stream. */
export function streamNameOf(key: string): string | undefined {
  return key.startsWith(STREAM_PREFIX) ? key.slice(STREAM_PREFIX.length) : undefined;
}

/** The hash tag Redis Cluster hashes a key on: the first non-empty `{...}`, else the whole key. */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/** Prefix of every bookkeeping key of a stream; hashes to the stream key's slot. */
export function bookkeepingPrefix(name: string): string {
  const key = streamKey(name);
  const tag = hashTagOf(key);
  if (tag !== undefined) return `{${tag}}:${key}`;
  // Wrapping the key in braces only works when it has no '}' of its own:
  // otherwise the wrapped key would hash on a prefix of it. Use a short tag
  // that hashes to the same slot instead.
  return key.includes('}') ? `{${slotTag(slotOf(key))}}:${key}` : `{${key}}`;
}

const slotTags = new Map<number, string>();

/** A short string whose hash slot is `slot` (found once per slot, cached). */
function slotTag(slot: number): string {
  let tag = slotTags.get(slot);
  for (let i = 0; tag === undefined; i++) {
    const candidate = `pulse-slot-${i.toString(36)}`;
    if (slotOf(candidate) === slot) tag = candidate;
  }
  slotTags.set(slot, tag);
  return tag;
}

/** Keys the library keeps for one sink on one stream. */
export interface SinkKeys {
  /** Sorted set: consumer name -> last keep-alive, in Redis server milliseconds. */
  readonly consumers: string;
  /** String: the consumer that currently runs reclaim and cleanup for the sink. */
  readonly lease: string;
  /** Sorted set: event ID -> due time (Redis server ms) of events nacked with a delay longer than the grace period. */
  readonly delays: string;
  /** String, short-lived: what `destroy()` took from the sink (unread and pending events), for a live instance to report. */
  readonly obituary: string;
}

/** Set of the sink names that have bookkeeping keys on a stream (so `destroy` finds them). */
export function sinkRegistryKey(name: string): string {
  return `${bookkeepingPrefix(name)}:sinks`;
}

/** String: the stream's max-deleted-entry-id after the last `stream.remove()` (see `removeEntries`). */
export function lastRemovalKey(name: string): string {
  return `${bookkeepingPrefix(name)}:deleted`;
}

/** Hash: sink name -> entries `stream.remove()` deleted before that sink read them, not yet reported. */
export function removedKey(name: string): string {
  return `${bookkeepingPrefix(name)}:removed`;
}

export function sinkKeys(streamName: string, sinkName: string): SinkKeys {
  const p = `${bookkeepingPrefix(streamName)}:sink:${sinkName}`;
  return {
    consumers: `${p}:consumers`,
    lease: `${p}:lease`,
    delays: `${p}:delays`,
    obituary: `${p}:obituary`,
  };
}

/**
 * Hash of the dead letters a cluster replay added to the stream but has not
 * yet deleted from their dead-letter stream (field `<dead-letter stream key>
 * <letter ID>`, value the new entry ID), so that the letter is never added
 * twice. Empty (so gone) but for a replayer that stopped midway; it expires
 * with the stream. See `replayDeadLetters`.
 */
export function replayedKey(name: string): string {
  return `${bookkeepingPrefix(name)}:replayed`;
}

/**
 * String in the dead-letter stream's slot: the token of the replayer that
 * owns the letter `id` of the dead-letter stream `deadName` while it moves it.
 */
export function replayClaimKey(deadName: string, id: string): string {
  return `${bookkeepingPrefix(deadName)}:replaying:${id}`;
}

/** Entry fields, shared with Go Pulse. */
export const FIELD_NAME = 'n';
export const FIELD_PAYLOAD = 'p';
export const FIELD_TOPIC = 't';
