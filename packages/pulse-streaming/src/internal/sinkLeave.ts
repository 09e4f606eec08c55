/**
 * A sink instance leaving: its consumer name, and leaving the groups of its
 * streams (on `removeStream` and `close`), bounded so that shutdown never
 * hangs on a stopped Redis.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../logger.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { sinkWideKeys } from './keys.js';
import { refusedAsMigrating } from './migratingRead.js';
import { leaveOneByOne } from './migratingWrites.js';
import { errorText } from './redisErrors.js';
import { leave } from './scripts.js';
import { FORGET_GRACES, type SinkStream } from './sinkState.js';

/** A consumer name unique to this instance: host, process and a random part. */
export function newConsumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Longest wait of each step of `close()` on an unresponsive Redis. */
export const CLOSE_STEP_MS = 2000;

/** Resolves to `p`, or to undefined after `ms`, so shutdown never hangs on a stopped Redis. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

/** Who leaves: the sink, this instance, its control connection and grace period. */
export interface Leaver {
  readonly name: string;
  readonly consumerName: string;
  readonly control: OwnedConnection;
  readonly graceMs: number;
}

/**
 * Leaves the group of stream `s` (see `leave`); with `destroyIfLast`
 * (removeStream) the group goes too when nothing and no one is left.
 */
export async function leaveStream(l: Leaver, s: SinkStream, destroyIfLast: boolean): Promise<number> {
  try {
    const left = await evalScript(
      l.control,
      leave,
      [s.stream.key, s.keys.consumers, s.keys.lease, s.registry, s.keys.delays, s.positions],
      [l.name, l.consumerName, destroyIfLast ? '1' : '0', 2 * l.graceMs],
    );
    return Number(left);
  } catch (err) {
    // Its slot migrates and a key is missing (the lease, the delays set): see migratingWrites.ts.
    if (!refusedAsMigrating(err)) throw err;
    const keys = { stream: s.stream.key, consumers: s.keys.consumers, lease: s.keys.lease };
    return leaveOneByOne(l.control, keys, { group: l.name, self: l.consumerName, destroyIfLast });
  }
}

/**
 * Said (debug) when a removed stream's group is destroyed, its last consumer
 * gone: a sink reading the stream again later starts a new group at its
 * startAt, which may hand out again what this one did ('oldest') or skip
 * what it had not read ('newest').
 */
export function saidDestroyed(logger: Logger, s: SinkStream, left: number): void {
  if (left === 1) logger.debug({ stream: s.stream.name }, 'removed the stream: no other consumer, its group is destroyed');
}

/**
 * Leaves the groups of streams left behind (removeStream with events still
 * pending) once a sweep found none of this instance's left there, destroying
 * each when no one is left, as removeStream does. Returns those where
 * something is pending again (or the call failed): still left behind.
 */
export async function leaveLeftBehind(l: Leaver, streams: readonly SinkStream[], logger: Logger): Promise<SinkStream[]> {
  const still: SinkStream[] = [];
  for (const s of streams) {
    try {
      const left = await leaveStream(l, s, true);
      if (left < 0) still.push(s);
      saidDestroyed(logger, s, left);
    } catch (err) {
      logger.debug({ stream: s.stream.name, err: errorText(err) }, 'could not leave a removed stream yet: tried again');
      still.push(s);
    }
  }
  return still;
}

/**
 * Leaves every stream's group at close, each bounded; a failure is logged,
 * never thrown. When this instance left every group with nothing pending, it
 * also leaves the sink's liveness set: the other instances then have nothing
 * to look for, where an instance gone stale makes them sweep every stream
 * (see sinkMaintenance.ts). Otherwise it stays there and goes stale.
 */
export async function leaveAll(
  l: Leaver,
  streams: readonly SinkStream[],
  logger: Logger,
  removed: ReadonlySet<SinkStream> = new Set(),
): Promise<void> {
  const left = await Promise.all(
    streams.map(async (s) => {
      try {
        // A stream removeStream left behind goes as removeStream would have it go: its group too when no one is left.
        return (await within(leaveStream(l, s, removed.has(s)), CLOSE_STEP_MS)) ?? -1;
      } catch (err) {
        logger.warn({ stream: s.stream.name, err: errorText(err) }, 'could not leave the group cleanly');
        return -1;
      }
    }),
  );
  const stayed = streams.filter((_, i) => (left[i] ?? -1) < 0);
  if (stayed.length > 0) {
    await postWork(l, stayed, logger);
    return;
  }
  const key = sinkWideKeys(l.name).instances;
  try {
    await within(l.control.send(['ZREM', key, l.consumerName], key), CLOSE_STEP_MS);
  } catch (err) {
    logger.warn({ err: errorText(err) }, 'could not leave the sink liveness set: the others will sweep once');
  }
}

/**
 * Streams where this instance stays in the group at close (events of its
 * own still pending: a handler's, a nack's) go to the sink-wide work set,
 * which the live instances read at their next beat (every grace period /
 * 2) and sweep: a nack's delay shorter than the grace period is then
 * honoured by one of them (its due time is kept in Redis). Without it they
 * swept those streams only once this instance went stale, a grace period
 * after its last beat: a `nack({ delayMs: 300 })` before a rolling
 * restart came back after about 3 s (outside review AH). The set expires
 * as the liveness calls make it expire (never sooner than it would).
 */
async function postWork(l: Leaver, stayed: readonly SinkStream[], logger: Logger): Promise<void> {
  const key = sinkWideKeys(l.name).work;
  const ms = FORGET_GRACES * l.graceMs;
  try {
    await within(
      l.control.transaction(
        [
          ['SADD', key, ...stayed.map((s) => s.stream.key)],
          ['PEXPIRE', key, ms, 'NX'],
          ['PEXPIRE', key, ms, 'GT'],
        ],
        key,
      ),
      CLOSE_STEP_MS,
    );
  } catch (err) {
    logger.warn(
      { err: errorText(err) },
      'could not post the streams left with pending events: the others sweep them once this instance is stale',
    );
  }
}
