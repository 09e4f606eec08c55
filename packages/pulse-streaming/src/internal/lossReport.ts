/**
 * How a reader or sink reports events lost before it handled them (trimmed
 * by `maxLen`, deleted with `XDEL`...), so that a default setup is never
 * silent about them (API.md "Retention"):
 * - with the user's logger: a `warn` line per loss, as every other warning;
 * - without one: a process warning of type `PulseWarning`, at most one per
 *   interval (a minute) per reader or sink. The first loss warns at once;
 *   later ones within the interval are summed into one warning at its end,
 *   or at `close()`.
 * A loss that cannot be counted (how many is unknown) goes the same ways
 * (`unknown`), with its own code.
 */
import type { Logger } from '../logger.js';

/** The `type` of the process warnings, for `process.on('warning', w => w.name === 'PulseWarning')`. */
export const WARNING_TYPE = 'PulseWarning';
/** Their `code`. */
export const WARNING_CODE = 'PULSE_EVENTS_LOST';

/**
 * A warning that must not be silent: a `warn` line with the user's logger,
 * else a process warning of type `PulseWarning` with `code`.
 */
export function warnOrEmit(logger: Logger, hasLogger: boolean, fields: Record<string, unknown>, msg: string, code: string): void {
  if (hasLogger) logger.warn(fields, msg);
  else process.emitWarning(msg, { type: WARNING_TYPE, code });
}
/** The `code` of a warning that events may be lost and how many is unknown (see `LossReport.unknown`). */
export const WARNING_CODE_UNKNOWN = 'PULSE_EVENTS_MAYBE_LOST';
/** The `code` of the warning that a `filter` threw (see `LossReport.filterThrew`). */
export const WARNING_CODE_FILTER = 'PULSE_FILTER_THREW';

export class LossReport {
  readonly #logger: Logger | undefined;
  /** Who lost events of a stream (undefined: the one it was made for). */
  readonly #what: (stream?: string) => string;
  readonly #intervalMs: number;
  /** Lost since the last warning, not yet reported, per stream ('' when not said), with the last message. */
  #pending = new Map<string, { count: number; message: string }>();
  /** While set, the interval after a warning runs: losses wait for its end. */
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** When the last process warning of an unknown loss was emitted (`performance.now()`). */
  #unknownAt = Number.NEGATIVE_INFINITY;
  /** Unknown losses said within the interval after it, not reported yet, and the last one's text. */
  #unknownMore = 0;
  #unknownText = '';
  #unknownStream: string | undefined;
  #unknownTimer: NodeJS.Timeout | undefined;
  #filterSaid = false;

  /**
   * @param logger - the user's logger (a child of it is fine), undefined when the user gave none.
   * @param what - who lost events, e.g. `reader of stream orders`; a function for a sink of
   *   several streams, given the stream that lost them (`sink billing on stream refunds`).
   * @param intervalMs - the shortest time between two process warnings (tests shorten it).
   */
  constructor(logger: Logger | undefined, what: string | ((stream?: string) => string), intervalMs = 60_000) {
    this.#logger = logger;
    this.#what = typeof what === 'string' ? () => what : what;
    this.#intervalMs = intervalMs;
  }

  /**
   * Reports `count` events lost. `fields` and `message` go to the logger as
   * they are; a process warning says `message` with the count.
   */
  lost(count: number, fields: Record<string, unknown>, message: string): void {
    if (count <= 0) return;
    if (this.#logger) {
      this.#logger.warn({ ...fields, count }, message);
      return;
    }
    // Per stream: a sink of several names the one that lost them (review V), never a sum over all.
    const stream = typeof fields.stream === 'string' ? fields.stream : '';
    const was = this.#pending.get(stream);
    this.#pending.set(stream, { count: (was?.count ?? 0) + count, message });
    // After close() nothing would flush it later: report at once.
    if (this.#closed) this.#emit();
    else if (this.#timer === undefined) this.#flush();
  }

  /**
   * Reports that events may have been lost and how many is unknown: with the
   * user's logger a `warn` line each time; without one a process warning, at
   * most one per interval: those that come within it are said as one more at
   * its end (or at `close()`), with the last one's message.
   */
  unknown(fields: Record<string, unknown>, message: string): void {
    if (this.#logger) {
      this.#logger.warn(fields, message);
      return;
    }
    const stream = typeof fields.stream === 'string' ? fields.stream : undefined;
    const text = `events may be lost${stream === undefined ? '' : ` (stream ${stream})`}: ${message}`;
    const wait = this.#unknownAt + this.#intervalMs - performance.now();
    if (wait <= 0 || this.#closed) {
      this.#emitUnknown(text, stream);
      return;
    }
    this.#unknownMore++;
    this.#unknownText = text;
    this.#unknownStream = stream;
    this.#unknownTimer ??= setTimeout(() => this.#unknownFlush(), wait).unref();
  }

  #unknownFlush(): void {
    this.#unknownTimer = undefined;
    const more = this.#unknownMore;
    this.#unknownMore = 0;
    if (more === 1) this.#emitUnknown(this.#unknownText, this.#unknownStream);
    else if (more > 1)
      this.#emitUnknown(`${more} warnings that events may be lost, the last: ${this.#unknownText}`, this.#unknownStream);
  }

  #emitUnknown(text: string, stream: string | undefined): void {
    this.#unknownAt = performance.now();
    process.emitWarning(
      `${this.#what(stream)}: ${text} (reported at most once a minute; pass a logger to the Stream for details)`,
      {
        type: WARNING_TYPE,
        code: WARNING_CODE_UNKNOWN,
      },
    );
  }

  /**
   * A `filter` threw on event `id`: the event was treated as rejected (a
   * sink acks it), so it is never handled. The caller logs each to the
   * user's logger; without one, the first is a process warning (once: a
   * filter that throws usually throws on every event).
   */
  filterThrew(id: string, err: string): void {
    if (this.#logger || this.#filterSaid) return;
    this.#filterSaid = true;
    process.emitWarning(
      `${this.#what()}: its filter threw on event ${id} (${err}): such events are treated as rejected, never handled ` +
        '(said once; pass a logger to the Stream to see each)',
      { type: WARNING_TYPE, code: WARNING_CODE_FILTER },
    );
  }

  /**
   * Reports what the current interval summed, if anything, as a last warning.
   * Idempotent. Resolves once the warnings are delivered: Node emits a
   * warning on the next tick, and a program that called `process.exit()`
   * right after the reader's or sink's `close()` never printed the one made
   * here (outside trial: 470 of 860 events counted lost went unsaid).
   */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size > 0) this.#emit();
    clearTimeout(this.#unknownTimer);
    this.#unknownFlush();
    return new Promise((resolve) => process.nextTick(resolve));
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#pending.size === 0 || this.#closed) return;
    this.#emit();
    this.#timer = setTimeout(() => this.#flush(), this.#intervalMs);
    // A pending report must not keep the process alive: close() reports it.
    this.#timer.unref();
  }

  #emit(): void {
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [stream, { count, message }] of pending)
      process.emitWarning(
        `${this.#what(stream || undefined)}: ${count} event${count === 1 ? '' : 's'} lost: ${message} ` +
          '(reported at most once a minute; pass a logger to the Stream for details)',
        { type: WARNING_TYPE, code: WARNING_CODE },
      );
  }
}
