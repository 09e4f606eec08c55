/**
 * The option names of the options types of `options.ts`, for
 * `checkOptionNames` (optionNames.ts). Apart from optionNames.ts so that the
 * modules `options.ts` reads its types from (logger, event, and what they
 * import) can check their own options without an import circle.
 */

import type { Event } from '../event.js';
import type {
  AddOptions,
  AddStreamOptions,
  ProcessBatchOptions,
  ProcessOptions,
  ReaderOptions,
  RetryOptions,
  SinkOptions,
  StreamOptions,
} from '../options.js';
import { names } from './optionNames.js';

const READER = names<ReaderOptions>()(['startAt', 'blockMs', 'maxPolled', 'bufferSize', 'topic', 'filter']);
const PROCESS = names<ProcessOptions>()(['concurrency', 'signal', 'retry']);

/**
 * The fields of an event (`Event`, `SinkEvent`: what `for...in` lists), which
 * `add` takes as options without a word: forwarding an event as the options
 * of its copy (`out.add(ev.eventName, ev.payload, ev)`) compiles and gives its
 * topic and headers.
 */
export const EVENT_FIELDS: ReadonlySet<string> = new Set<keyof Event>([
  'id',
  'streamName',
  'eventName',
  'topic',
  'payload',
  'deliveryCount',
  'headers',
]);

/** The names each options object of `options.ts` takes, by the function that takes it. */
export const OPTION_NAMES = {
  Stream: names<StreamOptions>()(['maxLen', 'logger', 'ttlMs', 'slidingTtl', 'retention', 'dedupWindowMs', 'codec', 'schemas']),
  add: names<AddOptions>()(['topic', 'onlyIfStreamExists', 'headers', 'dedupId']),
  newReader: READER,
  newSink: names<SinkOptions>()([...READER, 'noAck', 'ackGracePeriodMs', 'maxDeliveries', 'deadLetterStream']),
  addStream: names<AddStreamOptions>()(['startAt']),
  process: PROCESS,
  processBatch: names<ProcessBatchOptions>()([...PROCESS, 'maxBatch', 'maxWaitMs']),
  retry: names<RetryOptions>()(['delayMs', 'factor', 'maxDelayMs', 'jitter']),
} as const;
