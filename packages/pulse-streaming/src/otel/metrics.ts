/**
 * The metrics of registrations: the counters
 * `messaging.client.sent.messages` and `messaging.client.consumed.messages`,
 * counted on the destinations (attributes.ts) and reported when the SDK
 * collects, and the histogram `messaging.process.duration`.
 *
 * Counted here rather than with SDK counters: an add to an SDK counter
 * hashes its attributes each time (a few microseconds), which publishing at
 * hundreds of thousands of events per second would feel. The price is that
 * a count reaches the SDK only when it collects (every 60 s by default), so
 * the counts outlive the registration: its callback stays until the first
 * collection after it was unregistered and its work in flight ended. It
 * was removed at once, and a service that unregistered, then shut its SDK
 * down (whose last export collects), lost up to an export interval of
 * counts, and those of the adds in flight, while the histogram had them.
 *
 * The counts are kept per meter (per MeterProvider), shared by the
 * registrations on it: two callbacks reporting the same series give the
 * SDK two cumulative values for one counter, which it reads as resets
 * (counts lost or added twice). So a registration made again on the same
 * provider (another propagator, a new tracer provider) adds to the same
 * counts, and they are reported once.
 */
import type { Attributes, BatchObservableResult, Histogram, Meter, ObservableCounter } from '@opentelemetry/api';
import { type Destination, Destinations, DURATION_BUCKETS, METRIC } from './attributes.js';

/** What a registration counts into and records with; {@link MeterMetrics.release} when it is done. */
export interface MeterMetrics {
  /** The destinations whose counts the sent and consumed counters report, shared by the meter's registrations. */
  readonly destinations: Destinations;
  /** `messaging.process.duration`, in seconds: recorded per handler call (a synchronous instrument). */
  readonly duration: Histogram;
  /**
   * This registration counts no more (unregistered, its work in flight
   * ended): once no registration of the meter counts, the next collection
   * reports the counts one last time and removes the callback. Once per
   * registration; calls after the first do nothing.
   */
  release(): void;
}

/**
 * The counts of each meter. Of this copy of the module: a registration
 * through the ESM and one through the CommonJS build on one provider still
 * report separately, as two registrations of one copy did before.
 */
const byMeter = new WeakMap<Meter, Counts>();

/** The metrics of `meter`, held until {@link MeterMetrics.release} is called. */
export function holdMetrics(meter: Meter): MeterMetrics {
  let counts = byMeter.get(meter);
  if (counts === undefined) {
    counts = new Counts(meter);
    byMeter.set(meter, counts);
  }
  const held = counts;
  held.holders++;
  let released = false;
  return {
    destinations: held.destinations,
    duration: held.duration,
    release: () => {
      if (released) return;
      released = true;
      held.holders--;
    },
  };
}

/** One meter's counters, their callback and the destinations they count on. */
class Counts {
  readonly destinations = new Destinations();
  readonly duration: Histogram;
  /** Registrations that count into these (registered, or unregistered with work in flight). */
  holders = 0;
  readonly #meter: Meter;
  readonly #observables: [ObservableCounter, ObservableCounter];

  constructor(meter: Meter) {
    this.#meter = meter;
    const sent = meter.createObservableCounter(METRIC.sent, {
      description: 'Messages a producer attempted to send (stream.add calls)',
      unit: '{message}',
    });
    const consumed = meter.createObservableCounter(METRIC.consumed, {
      description: 'Messages handed to a handler of sink.process() or sink.processBatch()',
      unit: '{message}',
    });
    this.#observables = [sent, consumed];
    // One callback for both: removed at once, never between the two counters' observations.
    meter.addBatchObservableCallback(this.#observe, this.#observables);
    // A histogram cannot be counted ahead like the counters: one record per handler call.
    this.duration = meter.createHistogram(METRIC.processDuration, {
      description: 'Duration of handler calls of sink.process() and sink.processBatch()',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  }

  readonly #observe = (result: BatchObservableResult): void => {
    const [sent, consumed] = this.#observables;
    reportAll(result, sent, this.destinations.sends());
    reportAll(result, consumed, this.destinations.processes());
    // Reported one last time: the callback goes. Not now: the SDK calls its callbacks in a
    // `map` over its list, and removing one in place would skip the next (another library's).
    if (this.holders === 0) queueMicrotask(this.#removeIfUnused);
  };

  readonly #removeIfUnused = (): void => {
    // A registration made since the collection counts here again: the callback stays.
    if (this.holders > 0 || byMeter.get(this.#meter) !== this) return;
    byMeter.delete(this.#meter);
    this.#meter.removeBatchObservableCallback(this.#observe, this.#observables);
  };
}

function reportAll(result: BatchObservableResult, counter: ObservableCounter, all: Iterable<Destination>): void {
  const report = (n: number, attributes: Attributes) => result.observe(counter, n, attributes);
  for (const d of all) d.observe(report);
}
