import { InvalidArgumentError } from '../errors.js';
import type { Event } from '../event.js';
import type { ReaderOptions } from '../options.js';
import { parseStart, type ResolvedStart } from './start.js';
import { dropThenable, isThenable } from './thenable.js';
import { topicMatcher } from './topic.js';
import { checkInt, MAX_TIMER_MS } from './validate.js';

/** Reader and sink options, validated, with defaults applied. */
export interface ReadSettings {
  readonly start: ResolvedStart;
  readonly blockMs: number;
  readonly maxPolled: number;
  readonly bufferSize: number;
  /** Topic and filter together; undefined when every event matches. */
  readonly matches: ((event: Event) => boolean) | undefined;
}

export function readSettings(options: ReaderOptions): ReadSettings {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
  const topic = topicMatcher(options.topic);
  const user = options.filter;
  if (user !== undefined && typeof user !== 'function') throw new InvalidArgumentError('filter must be a function');
  const filter = user === undefined ? undefined : decodeTolerant(user);
  let matches: ((event: Event) => boolean) | undefined;
  if (topic && filter) matches = (e) => topic(e.topic) && filter(e);
  else if (topic) matches = (e) => topic(e.topic);
  else matches = filter;
  return {
    start: parseStart('startAt', options.startAt),
    blockMs: checkInt('blockMs', options.blockMs, 5000, 1, MAX_TIMER_MS),
    maxPolled: checkInt('maxPolled', options.maxPolled, 1000, 1),
    bufferSize: checkInt('bufferSize', options.bufferSize, 1000, 1),
    matches,
  };
}

/**
 * A filter that reads `data` of an event that does not decode (or whose
 * schema validates asynchronously) throws: such an event is let through,
 * so that the consumer meets it as it would without a filter (`process()`
 * dead-letters it with reason `decode: ...`), instead of being acked unseen
 * as a filtered one. Anything else the filter throws is the filter's own.
 */
function decodeTolerant(filter: (event: Event) => boolean): (event: Event) => boolean {
  return (e) => {
    let matched: unknown;
    try {
      matched = filter(e);
    } catch (err) {
      // Only what reading `data` threw: for an event decoded asynchronously, decodeFailure() is a
      // promise, never undefined, and every throw of the filter's own let the event through unsaid.
      if (e.threwOnData(err)) return true;
      throw err;
    }
    // An async filter (plain JavaScript, or typed loosely): its promise is truthy, so every event
    // would pass, and its rejection would be unhandled. Refused as a throwing filter is.
    if (isThenable(matched)) {
      dropThenable(matched);
      throw new InvalidArgumentError('the filter returned a promise: filters must answer synchronously');
    }
    return matched as boolean;
  };
}
