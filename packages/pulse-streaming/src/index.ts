export type { IoRedisClient, NodeRedisClient, RedisClient } from './client.js';
export type {
  Codec,
  CodecName,
  InferSchemaOutput,
  StandardSchemaIssue,
  StandardSchemaProps,
  StandardSchemaResult,
  StandardSchemaV1,
} from './codec.js';
export {
  type DeadLetter,
  type DeadLetterOptions,
  type ReadDeadLettersOptions,
  type ReplayDeadLettersOptions,
  readDeadLetters,
  replayDeadLetters,
} from './deadLetters.js';
export { ClosedError, DecodeError, InvalidArgumentError, NotOwnedError, PulseError } from './errors.js';
export {
  type Acker,
  Event,
  type EventInit,
  type EventMap,
  type EventNames,
  type EventOf,
  type PayloadOf,
  SinkEvent,
  type SinkEventOf,
  type Untyped,
} from './event.js';
export { type ConsoleLoggerOptions, consoleLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export type {
  AddOptions,
  AddStreamOptions,
  BatchHandler,
  EventHandler,
  ForwardedStreamOptions,
  NackOptions,
  ProcessBatchOptions,
  ProcessOptions,
  ReaderOptions,
  Retention,
  RetryOptions,
  SchemasOf,
  SinkOptions,
  StartAt,
  StreamArgs,
  StreamOptions,
  SubscribeOptions,
  TypedStreamOptions,
  WithCodec,
  WithSchemas,
} from './options.js';
export { Reader, type ReaderCounters } from './reader.js';
export { Sink, type SinkCounters } from './sink.js';
export { Stream } from './stream.js';
export { Subscription } from './subscription.js';
