export type { IoRedisClient, NodeRedisClient, RedisClient } from './client.js';
export {
  type DeadLetter,
  type DeadLetterOptions,
  type ReadDeadLettersOptions,
  type ReplayDeadLettersOptions,
  readDeadLetters,
  replayDeadLetters,
} from './deadLetters.js';
export { ClosedError, InvalidArgumentError, NotOwnedError, PulseError } from './errors.js';
export { type Acker, Event, type EventInit, SinkEvent } from './event.js';
export { type ConsoleLoggerOptions, consoleLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export type {
  AddOptions,
  AddStreamOptions,
  NackOptions,
  ProcessOptions,
  ReaderOptions,
  Retention,
  SinkOptions,
  StartAt,
  StreamOptions,
  SubscribeOptions,
} from './options.js';
export { Reader, type ReaderCounters } from './reader.js';
export { Sink, type SinkCounters } from './sink.js';
export { Stream } from './stream.js';
export { Subscription } from './subscription.js';
