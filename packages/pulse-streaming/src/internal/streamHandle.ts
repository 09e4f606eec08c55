/**
 * What the library's own code uses of a stream. `Stream` implements it; the
 * internal modules take this type, so that they depend on no public class
 * (stream.ts creates readers and sinks, which use these modules).
 */

import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Driver } from './driver.js';
import type { EventCodec } from './eventCodec.js';
import type { GoLifecycle } from './goLifecycle.js';

export interface StreamHandle {
  readonly name: string;
  /** Redis key of the stream. */
  readonly key: string;
  readonly driver: Driver;
  readonly logger: Logger;
  /** Expiry of the key in ms, if any. */
  readonly ttlMs: number | undefined;
  readonly slidingTtl: boolean;
  readonly maxLen: number;
  /** Whether the user gave a logger (else losses are process warnings). */
  readonly hasLogger: boolean;
  /** A typed stream's codec: its events' `data` decode with it. */
  readonly codec: EventCodec | undefined;
  /** Go Pulse v1.10's lifecycle record of the stream, looked at again when its key changes life (goLifecycle.ts). */
  readonly goLifecycle: GoLifecycle;
}

/** Streams read together must use the same client (one blocking connection reads them all). */
export function checkSameClient(main: StreamHandle, other: StreamHandle): void {
  if (typeof other !== 'object' || other === null || typeof (other as Partial<StreamHandle>).key !== 'string') {
    throw new InvalidArgumentError('addStream/removeStream take a Stream');
  }
  if (other.driver.kind !== main.driver.kind) {
    throw new InvalidArgumentError('addStream: the stream must use the same kind of Redis client as the reader or sink');
  }
}
