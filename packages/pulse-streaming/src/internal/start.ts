import { InvalidArgumentError } from '../errors.js';
import { idBefore } from './ids.js';
import { OPTION_NAMES } from './optionLists.js';
import { checkOptionNames } from './optionNames.js';
import { canonicalId, checkOptionsObject } from './validate.js';

/** Where a cursor starts, once validated. `newest` still needs the stream's last ID. */
export type ResolvedStart =
  | { kind: 'newest' }
  /** `dateMs`: the start was a Date at that time (this host's clock): see `sayIfStartAhead`. */
  | { kind: 'id'; id: string; dateMs?: number };

/** Validates a `startAt` option without touching Redis. */
export function parseStart(option: string, startAt: unknown): ResolvedStart {
  if (startAt === undefined || startAt === 'newest') return { kind: 'newest' };
  if (startAt === 'oldest') return { kind: 'id', id: '0-0' };
  if (startAt instanceof Date) {
    const ms = startAt.getTime();
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(`${option} is an invalid Date`);
    return { kind: 'id', id: idBefore(ms), dateMs: ms };
  }
  if (typeof startAt === 'object' && startAt !== null && 'after' in startAt) {
    // Canonical ('1000' -> '1000-0', '01000-0' -> '1000-0'): Redis reads either form, but the
    // start's loss ledger compares IDs as text and counts `XRANGE - <id>`, where '1000' means
    // 1000-<max>: later losses went uncounted (outside review AE).
    return { kind: 'id', id: canonicalId(`${option}.after`, (startAt as { after: unknown }).after) };
  }
  throw new InvalidArgumentError(
    `${option} must be 'newest', 'oldest', a Date or { after: '<id>' }, got ${typeof startAt === 'object' ? JSON.stringify(startAt) : String(startAt)}`,
  );
}

/**
 * Where `addStream(stream, options)` of a reader or a sink starts the new
 * stream: `options.startAt`, else `own` (the reader's or sink's start).
 */
export function addStreamStart(options: unknown, own: ResolvedStart): ResolvedStart {
  checkOptionsObject('addStream', options, ', e.g. { startAt }');
  checkOptionNames('addStream', options as object | undefined, OPTION_NAMES.addStream);
  const startAt = (options as { startAt?: unknown } | undefined)?.startAt;
  return startAt === undefined ? own : parseStart('startAt', startAt);
}
