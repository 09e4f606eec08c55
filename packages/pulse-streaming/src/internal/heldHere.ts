/**
 * What this instance holds now of a stream's events: those its `process()`
 * and `processBatch()` handlers are running, and those waiting in the buffer
 * of a subscription that is not stalled. A claim of its own that takes one
 * of them (pending with this very consumer, found idle because a keep-alive
 * came late: an event loop held up for most of a grace period, time after
 * time) must not hand it out a second time (sinkClaims.ts): a handler here
 * would run what one still runs, or the buffer would hold it twice
 * (SEMANTICS.md section 9: nothing is redelivered while this consumer is
 * alive and its handlers run).
 */
import type { SinkEvent } from '../event.js';
import type { Fanout } from './fanout.js';

/** The events the handlers of this instance's `process()` and `processBatch()` runs are running, across runs. */
export class RunningEvents {
  readonly #runs = new Set<ReadonlySet<SinkEvent>>();

  /** Adds a run's set of running events (kept in progress by it); returns what takes it out again (the run stops). */
  track(running: ReadonlySet<SinkEvent>): () => void {
    this.#runs.add(running);
    return () => this.#runs.delete(running);
  }

  /** The runs' sets, for {@link heldHere}. */
  get runs(): Iterable<ReadonlySet<SinkEvent>> {
    return this.#runs;
  }
}

/** Of `ids` (events of stream `name`), those this instance holds now (see the file's comment). */
export function heldHere(fanout: Fanout<SinkEvent>, running: RunningEvents, name: string, ids: readonly string[]): Set<string> {
  const wanted = new Set(ids);
  const held = new Set<string>();
  const look = (ev: SinkEvent) => {
    if (ev.streamName === name && wanted.has(ev.id)) held.add(ev.id);
  };
  for (const run of running.runs) for (const ev of run) look(ev);
  // A stalled subscription's buffer is not held (its events went to others or back to Redis):
  // a claimed copy supersedes what is left there (`dropBuffered`).
  for (const sub of fanout.subs) if (!sub.ended && !sub.stalled) for (const ev of sub.queued()) look(ev);
  return held;
}
