/**
 * Retry backoff of `process()` and `processBatch()`: how long a failed
 * delivery waits before it is redelivered (a nack with that delay, which
 * every instance of the sink honours, see `nack({ delayMs })`).
 */
import { InvalidArgumentError } from '../errors.js';
import type { RetryOptions } from '../options.js';
import { OPTION_NAMES } from './optionLists.js';
import { checkOptionNames, refuseSinkOnly } from './optionNames.js';
import { checkInt, describeValue } from './validate.js';

/** `retry` checked, defaults applied. */
export interface RetrySettings {
  readonly delayMs: number;
  readonly factor: number;
  readonly maxDelayMs: number;
  readonly jitter: number;
}

export const DEFAULT_RETRY: RetrySettings = { delayMs: 1000, factor: 2, maxDelayMs: 60_000, jitter: 0.2 };

/** A finite number in `[min, max]`, or the default when undefined. */
function checkNumber(option: string, value: unknown, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${option} must be a number from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * The `retry` option: `false` (redeliver at once) or backoff settings.
 * @throws InvalidArgumentError for anything else, or a bad field.
 */
export function retrySettings(value: unknown): RetrySettings | false {
  if (value === false) return false;
  if (value === undefined) return DEFAULT_RETRY;
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(`retry must be an object or false, got ${value === null ? 'null' : typeof value}`);
  }
  checkOptionNames('retry', value, OPTION_NAMES.retry);
  refuseSinkOnly('retry', value);
  const r = value as RetryOptions;
  return {
    delayMs: checkInt('retry.delayMs', r.delayMs, DEFAULT_RETRY.delayMs, 0),
    factor: checkNumber('retry.factor', r.factor, DEFAULT_RETRY.factor, 1, Number.MAX_VALUE),
    maxDelayMs: checkInt('retry.maxDelayMs', r.maxDelayMs, DEFAULT_RETRY.maxDelayMs, 0),
    jitter: checkNumber('retry.jitter', r.jitter, DEFAULT_RETRY.jitter, 0, 1),
  };
}

/**
 * The redelivery delay of an event whose delivery `deliveryCount` failed:
 * `min(maxDelayMs, delayMs * factor^(deliveryCount-1))`, scaled by
 * `1 - jitter + 2 * jitter * random` (`random` in [0, 1)), and never more
 * than `maxDelayMs`: a capped delay is scaled by `1 - jitter * random`
 * instead (spread below the cap); 0 without retry.
 */
export function retryDelay(retry: RetrySettings | false, deliveryCount: number, random: number = Math.random()): number {
  if (retry === false) return 0;
  const step = Math.max(1, deliveryCount) - 1;
  // factor^step overflows to Infinity after enough deliveries (2^1024): times a delayMs of 0 that is
  // NaN, a nack Redis refuses. A delay of 0 stays 0, and anything past maxDelayMs is maxDelayMs.
  const grown = retry.delayMs === 0 ? 0 : retry.delayMs * retry.factor ** step;
  const capped = !Number.isFinite(grown) || grown >= retry.maxDelayMs;
  const base = capped ? retry.maxDelayMs : grown;
  // A capped delay is spread below the cap only (by up to `jitter`), not clipped to it: clipped,
  // half of all capped redeliveries came at exactly maxDelayMs (review P).
  const scale = capped ? 1 - retry.jitter * random : 1 - retry.jitter + 2 * retry.jitter * random;
  return Math.min(retry.maxDelayMs, Math.max(0, Math.round(base * scale)));
}
