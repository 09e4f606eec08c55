/**
 * `pulse-streaming/keys`: the Redis key layout, for tools that inspect streams
 * from outside a `Stream` (the `pulse-streaming` CLI and dashboard use it).
 * Stream keys are Go Pulse's (`pulse:stream:<name>`); every other key is the
 * library's own bookkeeping, in the stream key's cluster slot. Applications
 * that publish and consume through `Stream` never need these.
 *
 * @packageDocumentation
 */
export { type SinkKeys, sinkKeys, streamKey, streamNameOf } from './internal/keys.js';
