/**
 * The user's logger, wrapped once where the library takes it (`Stream`'s
 * `logger` option) so that no call into it can break delivery. The library
 * logs from timers, loops, `finally` blocks and between the steps of a nack or
 * an ack; a logger that throws there (or is async and rejects) would crash the
 * process, kill a loop, skip the rest of a read or leave events pending. So:
 * - `debug/info/warn/error` never throw: a synchronous throw is caught, and a
 *   returned promise gets a rejection handler (no `unhandledRejection`);
 * - `child()` never throws: when the user's `child` throws or returns
 *   something that is not a logger, the child is this same wrapper with the
 *   bindings merged into the context of each call;
 * - what is swallowed is not silent: the first failure of a logger (and its
 *   children) is said once as a process warning `PulseWarning` with code
 *   `PULSE_LOGGER_FAILED`.
 * The hot path is a try/catch around the call and a `typeof` test of what it
 * returned: no allocation beyond the call's own (except under a fallback child,
 * which must merge its bindings).
 */
import type { Logger } from '../logger.js';
import { WARNING_TYPE } from './lossReport.js';

/** The `code` of the process warning that the user's logger threw or rejected. */
export const WARNING_CODE_LOGGER = 'PULSE_LOGGER_FAILED';

const METHODS = ['debug', 'info', 'warn', 'error', 'child'] as const;

/** Whether `value` has a logger's methods (what `child()` returned may not). */
function isLogger(value: unknown): value is Logger {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const l = value as Record<string, unknown>;
  for (const m of METHODS) if (typeof l[m] !== 'function') return false;
  return true;
}

/** What describes an error in the warning, without throwing itself. */
function describe(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  } catch {
    return 'an error that cannot be printed';
  }
}

/** Shared by the wrappers of one user logger and every child of them: one warning per user logger. */
class Failures {
  #warned = false;
  constructor(readonly what: string) {}
  /** Bound once so that handing it to a promise allocates nothing more. */
  readonly fail = (err: unknown): void => {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(
      `${this.what}: its logger threw or rejected, and pulse-streaming ignored it (delivery goes on); ` +
        `later failures of this logger are not reported. First: ${describe(err)}`,
      { type: WARNING_TYPE, code: WARNING_CODE_LOGGER },
    );
  };
}

/** `result` of a logger call: when it is a promise, its rejection is handled. */
function settle(result: unknown, failures: Failures): void {
  // A sync logger returns undefined: one typeof test and done.
  if (typeof result === 'object' && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
    (result as PromiseLike<unknown>).then(undefined, failures.fail);
  }
}

class SafeLogger implements Logger {
  readonly #target: Logger;
  /** Set on a fallback child only: merged into each call's context. */
  readonly #bindings: Record<string, unknown> | undefined;
  readonly #failures: Failures;

  constructor(target: Logger, bindings: Record<string, unknown> | undefined, failures: Failures) {
    this.#target = target;
    this.#bindings = bindings;
    this.#failures = failures;
  }

  #ctx(obj: object): object {
    return this.#bindings === undefined ? obj : { ...this.#bindings, ...obj };
  }

  // Each method calls the target's own method (its `this` kept, as pino needs) inside the try:
  // building the context, the call, and looking at what it returned may all throw.
  debug(obj: object, msg?: string): void {
    try {
      settle(this.#target.debug(this.#ctx(obj), msg), this.#failures);
    } catch (err) {
      this.#failures.fail(err);
    }
  }

  info(obj: object, msg?: string): void {
    try {
      settle(this.#target.info(this.#ctx(obj), msg), this.#failures);
    } catch (err) {
      this.#failures.fail(err);
    }
  }

  warn(obj: object, msg?: string): void {
    try {
      settle(this.#target.warn(this.#ctx(obj), msg), this.#failures);
    } catch (err) {
      this.#failures.fail(err);
    }
  }

  error(obj: object, msg?: string): void {
    try {
      settle(this.#target.error(this.#ctx(obj), msg), this.#failures);
    } catch (err) {
      this.#failures.fail(err);
    }
  }

  child(bindings: Record<string, unknown>): Logger {
    // Under a fallback, the user's child already failed once: keep merging instead of asking again,
    // which would also drop the bindings this fallback carries.
    if (this.#bindings !== undefined) return new SafeLogger(this.#target, { ...this.#bindings, ...bindings }, this.#failures);
    try {
      const child: unknown = this.#target.child(bindings);
      // isLogger inside the try: a proxy's getters may throw too.
      if (isLogger(child)) return new SafeLogger(child, undefined, this.#failures);
      this.#failures.fail(new TypeError(`child() returned ${typeof child}, not a logger`));
    } catch (err) {
      this.#failures.fail(err);
    }
    return new SafeLogger(this.#target, { ...bindings }, this.#failures);
  }
}

/** Per user logger, so that one given to several streams still warns once. */
const failuresOf = new WeakMap<Logger, Failures>();

/**
 * `logger` (already checked to have a logger's methods), wrapped so that none of its calls
 * can throw or reject; `what` names where it was first given, for the one warning of a failure.
 */
export function safeLogger(logger: Logger, what: string): Logger {
  let failures = failuresOf.get(logger);
  if (failures === undefined) {
    failures = new Failures(what);
    failuresOf.set(logger, failures);
  }
  return new SafeLogger(logger, undefined, failures);
}
