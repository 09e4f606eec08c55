/**
 * `pulse-streaming/keys`: the Redis key layout, for tools that inspect streams
 * from outside a `Stream` (the `pulse-streaming` CLI and dashboard use it).
 * Stream keys are Go Pulse's (`pulse:stream:<name>`); every other key is the
 * library's own bookkeeping, in the stream key's cluster slot, except the two
 * sink-wide keys of a sink (`{pulse:sink:<name>}:...`, the sink's own slot). Applications
 * that publish and consume through `Stream` never need these.
 *
 * @packageDocumentation
 */
import { sinkKeys as layoutOfSink, sinkWideKeys } from './internal/keys.js';
import type { SinkKeys } from './layout.js';

export { type SinkKeys, streamKey, streamNameOf } from './layout.js';

/** The keys the library keeps for the sink `sinkName` on the stream `streamName` (all in the stream key's slot). */
export const sinkKeys: (streamName: string, sinkName: string) => SinkKeys = layoutOfSink;

/**
 * Sorted set of the live instances of the sink `sinkName`: consumer name ->
 * its last liveness beat (Redis server ms, every grace period / 2). In its
 * own slot (hash tag on the sink name), not a stream's.
 */
export function sinkInstancesKey(sinkName: string): string {
  return sinkWideKeys(sinkName).instances;
}
