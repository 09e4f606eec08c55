/**
 * The key layout. Stream keys follow Go Pulse (`pulse:stream:<name>`) so both
 * share streams; the library's own bookkeeping keys carry a hash tag that puts
 * them in the stream key's cluster slot.
 */
import { type SinkKeys, streamKey } from '../layout.js';
import { slotOf } from './slot.js';

export { type SinkKeys, streamKey, streamNameOf } from '../layout.js';

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

/**
 * Keys of a sink as a whole, whatever streams its instances read: one slot
 * (hash tag on the sink name), so the liveness of every instance costs one
 * script call per sweep, not a keep-alive per stream.
 * `instances`: sorted set consumer name -> its last sweep (Redis server ms).
 * `work`: set of stream keys where an instance found idle events it had no
 * room to claim, for instances with room to take.
 * `reported`: sorted set of stream keys by when an instance last reported
 * what went with that stream when it expired (Redis server ms; see
 * holderWatch.ts), kept a few grace periods.
 * `options`: hash consumer name -> `<ackGracePeriodMs>:<noAck 0 or 1>` of
 * the instances in `instances`, so that each knows the others' (instances
 * of one sink may differ during a rolling deploy).
 * They expire when no instance of the sink runs any more (see sinkLiveness.ts).
 */
export function sinkWideKeys(sinkName: string): { instances: string; work: string; reported: string; options: string } {
  const p = `{pulse:sink:${sinkName}}`;
  return { instances: `${p}:instances`, work: `${p}:work`, reported: `${p}:reported`, options: `${p}:options` };
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

/**
 * Hash: sink name -> `<last-delivered ID> <entries-read>` of its group as
 * the last trim check left them (see `checkTrimmed`). Redis 7.0 does not
 * keep a group's entries-read across an AOF reload or on a replica (its
 * reads propagate as XCLAIMs without it): it comes back stale, and a trim
 * check trusting it would count every event the group had read as trimmed
 * before it read them. At the same last-delivered ID, this value is the one
 * to trust. Written by checks only, never per event.
 */
export function positionsKey(name: string): string {
  return `${bookkeepingPrefix(name)}:positions`;
}

/**
 * Idempotent publish (`add(..., { dedupId })`, SEMANTICS.md section 8): one
 * structure per stream rather than a key per dedupId, so that `destroy()`
 * deletes it by name (a key per ID would need a SCAN of the slot's node) and
 * it can expire with a TTL stream. Two hashes dedupId -> entry ID of its
 * first add (a record's window ends `dedupWindowMs` after that ID's
 * millisecond): `current`, which also holds in field '' (never a dedupId)
 * the server time (ms) it began, and `old`, the current one of the previous
 * window. A call that finds `current` a window old renames it to `old`
 * (dropping the previous `old`, whose records have all ended): records so
 * live one to two windows, without a per-record expiry to write. See
 * addScripts.ts.
 */
export function dedupKeys(name: string): { current: string; old: string } {
  const p = `${bookkeepingPrefix(name)}:dedup`;
  return { current: p, old: `${p}:old` };
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
