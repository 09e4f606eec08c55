/**
 * For the tests of a sink's own claim racing what this instance does to an event it took back
 * (claimAfterAck, claimAfterDeadLetter, claimHeldCount, claimNackWindow): one event on a stream of
 * its own, a sink on a user client whose commands (and those of the sink's control connection)
 * the test can hold back (controlIntercept.ts), with nothing of Redis mocked.
 */
import type { TestContext } from 'vitest';
import {
  type Logger,
  type ProcessOptions,
  type Sink,
  type SinkEvent,
  type SinkOptions,
  Stream,
} from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, recordingLogger, uniqueName, waitFor, within } from './clients.js';
import { type Intercepted, intercepted } from './controlIntercept.js';

/** The sink's grace period (ms): its keep-alives go every third of it, its claims take what idles longer. */
export const GRACE = 400;

/** Whether a command is a script call naming event `id` (a keep-alive, a nack, a dead letter). */
export function scriptNaming(args: readonly unknown[], id: string): boolean {
  return /^EVAL/i.test(String(args[0])) && args.map(String).includes(id);
}

/** Whether a command is the sink's read of the entries its claim took, starting at event `id`. */
export function claimRead(args: readonly unknown[], id: string): boolean {
  return String(args[0]).toUpperCase() === 'XRANGE' && String(args[2]) === id;
}

/**
 * Runs `handle` over `sink` by `process()` (one event a call) or `processBatch()` (`maxBatch` 1),
 * with `options` (its signal, retries, concurrency).
 */
export function handleBy(
  sink: Sink,
  how: 'process' | 'processBatch',
  handle: (events: SinkEvent[]) => Promise<void>,
  options: Pick<ProcessOptions, 'signal' | 'retry' | 'concurrency'>,
): Promise<void> {
  return how === 'process' ? sink.process((ev) => handle([ev]), options) : sink.processBatch(handle, { ...options, maxBatch: 1 });
}

export interface ClaimRace {
  readonly x: Intercepted;
  readonly s: Stream;
  readonly sink: Sink;
  /** The event's ID. */
  readonly id: string;
  readonly lines: ReturnType<typeof recordingLogger>['lines'];
  /** Until the sink's claim handed the event out again (`redelivered`) or kept it here (its debug line). */
  handedOutOrKept(): Promise<unknown>;
  /** Until nothing is pending in the group. */
  nothingPending(): Promise<unknown>;
  /** What an assertion prints: `calls` and every log line. */
  log(calls: unknown): string;
  /** Stops the consumer (`stop`, `run`) and closes the sink, each bounded. */
  end(stop: AbortController, run: Promise<unknown>): Promise<void>;
}

/**
 * The fixture: stream `prefix-...` (`makeStream`), its one event (`add`, default
 * `s.add('e', 'payload')`), sink `g` from the oldest entry with a grace period of GRACE.
 */
export async function claimRace(
  ctx: TestContext,
  kind: ClientKind,
  prefix: string,
  options: {
    /** Makes the stream (default: untyped, `maxLen: 0`). */
    makeStream?: (name: string, redis: Intercepted['redis'], logger: Logger) => Stream;
    sinkOptions?: SinkOptions;
    add?: (s: Stream, x: Intercepted) => Promise<unknown>;
  } = {},
): Promise<ClaimRace> {
  const x = await intercepted(ctx, kind);
  const { logger, lines } = recordingLogger();
  const make = options.makeStream ?? ((name, redis, log) => new Stream(name, redis, { logger: log, maxLen: 0 }));
  const s = make(uniqueName(prefix), x.redis, logger as Logger);
  const id = String(await (options.add ?? ((st: Stream) => st.add('e', 'payload')))(s, x));
  const sinkOptions = { startAt: 'oldest' as const, blockMs: 100, ackGracePeriodMs: GRACE, ...options.sinkOptions };
  const sink = await s.newSink('g', sinkOptions);
  const kept = () => lines.some((l) => /not handed out again/.test(String(l.msg)));
  return {
    x,
    s,
    sink,
    id,
    lines,
    handedOutOrKept: () =>
      waitFor(() => sink.counters.redelivered > 0 || kept(), { timeout: 5000, what: 'the claimed event handed out or kept' }),
    nothingPending: () =>
      waitFor(async () => Number(((await x.c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
        timeout: 5000,
        what: 'nothing pending',
      }),
    log: (calls) => `calls ${JSON.stringify(calls)}; log ${JSON.stringify(lines.map((l) => l.msg))}`,
    async end(stop, run) {
      stop.abort();
      await within(
        run.catch(() => {}),
        10_000,
        'the consumer',
      );
      await within(sink.close(), 10_000, 'close');
    },
  };
}
