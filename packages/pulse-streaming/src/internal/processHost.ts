/**
 * What `sink.process()` and `sink.processBatch()` need from their sink, and
 * their options once checked.
 */
import { InvalidArgumentError, type PulseError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { ProcessOptions, SubscribeOptions } from '../options.js';
import type { Subscription } from '../subscription.js';
import { OPTION_NAMES } from './optionLists.js';
import { checkOptionNames, refuseSinkOnly } from './optionNames.js';
import { type RetrySettings, retrySettings } from './retry.js';
import { checkInt, checkSignal } from './validate.js';

/** What `runProcess` and `runProcessBatch` need from their sink. */
export interface ProcessHost {
  subscribe(options?: SubscribeOptions): Subscription<SinkEvent>;
  /** The sink's name and this instance's consumer name, for tracing (diagnostics.ts). */
  readonly name: string;
  readonly consumerName: string;
  readonly logger: Logger;
  readonly graceMs: number;
  readonly noAck: boolean;
  /** The sink's `maxDeliveries` (undefined: unlimited): a failed delivery at it is dead-lettered, not nacked. */
  readonly maxDeliveries: number | undefined;
  /** Aborts when the sink closes (or stops on a fatal error). */
  readonly closed: AbortSignal;
  /**
   * Resets the idle time of events whose handler is still running; resolves once done (never
   * rejects), to false when no touch can ever be made again (the user's client is closed).
   */
  keepInProgress(events: ReadonlySet<SinkEvent>): Promise<boolean>;
  /**
   * Makes events held here known to the sink's claims (heldHere.ts): those a run's handlers run,
   * and those whose nack or dead letter is under way. Returns what unmakes it.
   */
  trackRunning(running: ReadonlySet<SinkEvent>, untilSettled?: boolean): () => void;
  /** Gives events back, redelivered after `delayMs`, one call per stream. */
  nack(events: readonly SinkEvent[], delayMs: number): Promise<void>;
  /** Moves an event to the dead-letter stream now, with `reason`. */
  deadLetter(event: SinkEvent, reason: string): Promise<void>;
  /**
   * Events whose nack or dead letter met NOGROUP (`how`: which): those Redis
   * lost while this instance held them (a rollback, or their stream's key
   * gone: see `goneWithKey`) are counted lost; the others come again with
   * the group made anew, or were counted with a destroy. Never rejects.
   */
  groupGone(events: readonly SinkEvent[], how: string): Promise<void>;
  /** Redis refused something for good (WRONGTYPE, NOPERM): ends the sink with `err`, where the sink allows it. */
  fail(err: PulseError): void;
}

/** Options shared by `process()` and `processBatch()`, checked. */
export interface RunSettings {
  readonly concurrency: number;
  readonly signal: AbortSignal | undefined;
  readonly retry: RetrySettings | false;
}

/**
 * @throws InvalidArgumentError for a bad option, before any Redis call; `retry`
 *   on a `noAck` sink too (its events are acked as read: none is redelivered).
 */
export function runSettings(
  options: ProcessOptions | undefined,
  noAck = false,
  what: 'process' | 'processBatch' = 'process',
): RunSettings {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError('options must be an object');
  }
  checkOptionNames(what, options, OPTION_NAMES[what]);
  refuseSinkOnly(what, options);
  if (noAck && options?.retry !== undefined) {
    throw new InvalidArgumentError('retry does not apply to a noAck sink: its events are acked as read and never redelivered');
  }
  return {
    concurrency: checkInt('concurrency', options?.concurrency, 1, 1),
    signal: checkSignal('signal', options?.signal),
    retry: retrySettings(options?.retry),
  };
}
