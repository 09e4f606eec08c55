/**
 * The handler calls of one `process()` or `processBatch()` run, watched for
 * running long: a handler that never returns keeps its events, and those
 * waiting behind them, from every other consumer (SEMANTICS.md section 9),
 * and looks like a slow one from outside, so it is said once per call.
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { monotonicNow } from './clock.js';

/** Grace periods a handler runs before a warning says so. */
const LONG_RUN = 10;

/** The first IDs of `events`, for a log line. */
export function ids(events: readonly SinkEvent[]): string[] {
  return events.slice(0, 10).map((ev) => ev.id);
}

export class LongCalls {
  /** Handler calls running (their events; `at`: when `watch` first saw them, 0 before; `told`: said to run long). */
  readonly #calls = new Set<{ readonly events: readonly SinkEvent[]; at: number; told: boolean }>();

  constructor(
    private readonly logger: Logger,
    /** The sink's ack grace period (ms). */
    private readonly graceMs: number,
  ) {}

  /** Runs `call`, the handler on `events`, seen by `watch` while it runs. */
  async run(events: readonly SinkEvent[], call: () => unknown): Promise<void> {
    // No clock read per call: `watch` stamps it when it first sees it.
    const entry = { events, at: 0, told: false };
    this.#calls.add(entry);
    try {
      await call();
    } finally {
      this.#calls.delete(entry);
    }
  }

  /**
   * Says once per handler call when it has run for LONG_RUN grace periods
   * (called by the run's in-progress timer). Only calls of the handler: not
   * a batch being gathered.
   */
  watch(): void {
    const now = monotonicNow();
    for (const c of this.#calls) {
      if (c.at === 0) c.at = now;
      else if (!c.told && now - c.at >= LONG_RUN * this.graceMs) {
        c.told = true;
        const first = c.events[0];
        this.logger.warn(
          { ids: ids(c.events), count: c.events.length, stream: first?.streamName, runningMs: now - c.at },
          'a handler is still running: its events, and those waiting behind them, stay with this consumer until it returns',
        );
      }
    }
  }
}
