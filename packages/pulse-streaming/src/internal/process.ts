/**
 * `sink.process()`: runs a handler for each event with bounded concurrency,
 * acks on success, nacks on a throw, and keeps running handlers in progress
 * so a slow handler is not mistaken for a dead consumer.
 */
import { InvalidArgumentError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { ProcessOptions, SubscribeOptions } from '../options.js';
import type { Subscription } from '../subscription.js';
import { traceProcess } from './diagnostics.js';
import { errorText } from './redisErrors.js';
import { checkInt, checkSignal } from './validate.js';

/** What `runProcess` needs from its sink. */
export interface ProcessHost {
  subscribe(options?: SubscribeOptions): Subscription<SinkEvent>;
  /** The sink's name and this instance's consumer name, for tracing (diagnostics.ts). */
  readonly name: string;
  readonly consumerName: string;
  readonly logger: Logger;
  readonly graceMs: number;
  readonly noAck: boolean;
  /** Resets the idle time of events whose handler is still running. */
  keepInProgress(events: ReadonlySet<SinkEvent>): void;
}

/**
 * Runs `handler` for each event with at most `concurrency` in flight; resolves
 * when `signal` aborts or the sink closes, after in-flight handlers finish.
 */
export async function runProcess(
  host: ProcessHost,
  handler: (event: SinkEvent) => unknown,
  options?: ProcessOptions,
): Promise<void> {
  if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
  const concurrency = checkInt('concurrency', options?.concurrency, 1, 1);
  const signal = checkSignal('signal', options?.signal);
  if (signal?.aborted) return;
  const sub = host.subscribe(signal ? { signal } : undefined);
  // Events whose handler is running: kept in progress by one timer for all.
  const running = new Set<SinkEvent>();
  const keepAlive = host.noAck
    ? undefined
    : setInterval(() => host.keepInProgress(running), Math.max(5, Math.floor(host.graceMs / 3)));
  // A slot is free once the handler returns: acks are coalesced by ack()
  // (one promise for all the acks of a tick) and awaited at the end, so
  // they never hold back the next event.
  // ack() flush -> the IDs it carries and its logged outcome, until it settles.
  const acks = new Map<Promise<void>, { ids: string[]; settled: Promise<void> }>();
  let active = 0;
  // While handlers run, the events waiting behind them stay with this
  // consumer (SEMANTICS.md section 9): the buffer counts as held however long
  // the handlers take, not only while the loop takes events.
  sub.keepHeldWhile(() => active > 0);
  let wake: (() => void) | undefined;
  const done = (): void => {
    active--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const run = async (ev: SinkEvent): Promise<void> => {
    running.add(ev);
    try {
      await traceProcess(ev, host.name, host.consumerName, handler);
    } catch (err) {
      host.logger.warn({ id: ev.id, deliveryCount: ev.deliveryCount, err: errorText(err) }, 'handler failed: event nacked');
      await ev.nack().catch((e: unknown) => host.logger.warn({ id: ev.id, err: errorText(e) }, 'nack failed'));
      return;
    } finally {
      running.delete(ev);
    }
    const flush = ev.ack();
    const known = acks.get(flush);
    if (known) {
      known.ids.push(ev.id);
      return;
    }
    const ids = [ev.id];
    const settled = flush
      .catch((err: unknown) => host.logger.warn({ ids, err: errorText(err) }, 'ack failed: the events will be redelivered'))
      .finally(() => acks.delete(flush));
    acks.set(flush, { ids, settled });
  };
  try {
    for await (const ev of sub) {
      active++;
      run(ev).then(done, done);
      while (active >= concurrency) await new Promise<void>((r) => (wake = r));
    }
    while (active > 0) await new Promise<void>((r) => (wake = r));
    await Promise.all([...acks.values()].map((a) => a.settled));
  } finally {
    clearInterval(keepAlive);
  }
}
