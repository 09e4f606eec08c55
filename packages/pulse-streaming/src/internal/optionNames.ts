/**
 * The names each options object takes, and the check that catches a
 * misspelt one. TypeScript refuses an unknown name in an object literal, but
 * not in an object built apart, and plain JavaScript not at all: an add with
 * `{ dedupID: id }` was retried without its dedup ID (a duplicate), a sink
 * with `{ ackGracePeriod: 60_000 }` ran at the default grace period, headers
 * passed as `header` were dropped, all in silence. A name close to one the
 * options take is refused with a typed error before any Redis call. A name
 * far from all of them is left alone: an app may pass its own settings
 * object, as `StreamOptions` may be extended (`{ redisUrl, maxLen }`), or an
 * object made for something else (an event as an add's options: its topic
 * and headers are taken, review P); so is an option of another call (one
 * config holding a sink's and its retry's options: `jitter` is no `filter`).
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * Every option name of `T`: a list that misses one does not compile, so the
 * lists follow the types (optionLists.ts for those of `options.ts`; the
 * others beside their types).
 */
export function names<T>() {
  return <const L extends readonly (keyof T & string)[]>(
    list: L &
      ([Exclude<keyof T & string, L[number]>] extends [never] ? unknown : { missing: Exclude<keyof T & string, L[number]> }),
  ): L => {
    for (const name of list) EVERY_NAME.add(name);
    return list;
  };
}

/** Every option name of every list made by {@link names}: none of them is a typo of another. */
const EVERY_NAME = new Set<string>();

/**
 * Throws {@link InvalidArgumentError} when `options` (of `what`, a function's
 * name) has a property whose name is close to one of `known` without being
 * it, nor an option of another call. With `strict`, any name but `known` and
 * those in `strict` is refused. Costs a loop over the given names (an add's
 * one or two) when all are known.
 */
export function checkOptionNames(
  what: string,
  options: object | undefined,
  known: readonly string[],
  strict?: ReadonlySet<string>,
): void {
  if (options === undefined || options === null) return;
  for (const key in options) {
    if (known.includes(key) || strict?.has(key)) continue;
    if (strict !== undefined) {
      const near = nearName(key, known);
      const hint = near === undefined ? `${what} takes ${known.join(', ')}` : `did you mean ${near}?`;
      throw new InvalidArgumentError(`${what} options have no ${JSON.stringify(key)} (${hint}): it would be ignored`);
    }
    if (EVERY_NAME.has(key)) continue;
    const near = nearName(key, known);
    if (near !== undefined) {
      throw new InvalidArgumentError(
        `${what} options have no ${JSON.stringify(key)} (did you mean ${near}?): it would be ignored`,
      );
    }
  }
}

/**
 * Options of the sink (`newSink`) that a handler run or its `retry` would
 * ignore, where ignoring one changes what happens to events: `maxDeliveries`
 * given to `process()` (or inside its `retry`, next to the backoff, where a
 * job queue's `attempts` goes) left failing events retried for ever, in
 * silence (outside review AD). Refused there, whatever the rule for options
 * of another call (`checkOptionNames`).
 */
const SINK_ONLY = ['maxDeliveries', 'ackGracePeriodMs', 'noAck'];

/** Throws {@link InvalidArgumentError} when `options` (of `what`) holds an option only `newSink` takes (`SINK_ONLY`). */
export function refuseSinkOnly(what: string, options: object | undefined): void {
  if (options === undefined || options === null) return;
  for (const name of SINK_ONLY) {
    if (name in options) {
      throw new InvalidArgumentError(`${what} options have no ${name}: it is an option of newSink() and would be ignored here`);
    }
  }
}

/**
 * The known name `key` was probably meant to be: the same but for case, a
 * missing `Ms` unit, a singular for a plural (`maxDelivery`), or one letter
 * off (`concurency`, `code` for `codec`). Two letters off caught real names
 * of other things (`minLen`, `loader`, `scheme`; review P).
 */
function nearName(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  return known.find((name) => {
    const n = name.toLowerCase();
    const plural = n === `${k}s` || k === `${n}s` || (k.endsWith('y') && n === `${k.slice(0, -1)}ies`);
    return n === k || n === `${k}ms` || plural || editDistance(k, n, 1);
  });
}

/** True when `a` becomes `b` with at most `max` insertions, deletions or substitutions. */
function editDistance(a: string, b: string, max: number): boolean {
  if (Math.abs(a.length - b.length) > max) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return (prev[b.length] ?? 0) <= max;
}
