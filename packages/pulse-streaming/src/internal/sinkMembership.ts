/**
 * A sink's `addStream` and `removeStream` past their checks: joining a
 * stream's group and reading it, or leaving it (its group destroyed when no
 * one is left), one call of a stream at a time (see `PerKey`).
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { ReadLoops } from './loops.js';
import { countObituaryAtJoin, joinStream } from './ownership.js';
import { toPulseError } from './redisErrors.js';
import { type Leaver, leaveStream } from './sinkLeave.js';
import { newSinkStream, type SinkSettings, type SinkStream } from './sinkState.js';
import type { ResolvedStart } from './start.js';
import type { StreamHandle } from './streamHandle.js';

/** What joining and leaving streams needs of the sink. */
export interface MembershipHost {
  readonly name: string;
  readonly consumerName: string;
  readonly settings: SinkSettings;
  readonly logger: Logger;
  /** The streams the sink reads, by key. */
  readonly streams: Map<string, SinkStream>;
  readonly loops: ReadLoops<SinkEvent>;
  closed(): boolean;
  leaver(): Leaver;
  /** Wakes the read loop of a slot group (`SinkReads.wake`). */
  wake(group: number): void;
  /** A stream was added: swept soon (`SinkMaintenance.streamAdded`). */
  streamAdded(): void;
  /** Left with events still pending, or not left (Redis away): left later (`SinkMaintenance.leftBehind`). */
  leftBehind(s: SinkStream): void;
  /** Resolves once acks sent so far are answered. */
  acksSettled(): Promise<void>;
  /** Counts what blocking reads of `streams` may have jumped over (`SinkReads.verifyReads`). */
  verifyReads(streams: readonly SinkStream[]): Promise<void>;
  /** Counts and reports `count` events of `stream` lost (`SinkHolds.countLost`). */
  countLost(stream: string, count: number, why: string): void;
}

/** Joins `stream`'s group from `start` and reads it; nothing when it is read already. */
export async function addSinkStream(host: MembershipHost, stream: StreamHandle, start: ResolvedStart): Promise<void> {
  if (host.streams.has(stream.key)) return;
  const { name, consumerName, settings, logger } = host;
  await joinStream(stream, { name, consumerName, graceMs: settings.graceMs, logger }, start, () => host.closed());
  // What a destroy() of the stream took from the sink while no instance read it (see countObituaryAtJoin).
  await countObituaryAtJoin(stream, name, logger, (st, n, why) => host.countLost(st, n, why));
  if (host.streams.has(stream.key)) return;
  const s = newSinkStream(name, settings, stream);
  host.streams.set(stream.key, s);
  host.streamAdded();
  host.wake(host.loops.groupOf(stream.key));
  try {
    await host.loops.add(stream.key);
  } catch (err) {
    // Not read (on a cluster, its slot's read connection could not open): forgotten, so that the
    // caller's retry reads it. Kept, the retry returned at once and the stream stayed unread. Its
    // consumer stays in the group with nothing pending, as after a join whose read never came.
    if (host.streams.get(stream.key) === s) host.streams.delete(stream.key);
    throw err;
  }
  // The group's MKSTREAM may have created the stream: Go readers need its record (goLifecycle.ts).
  await stream.goLifecycle.ensure();
}

/** Stops reading `stream` and leaves its group (destroyed when no one is left and nothing is pending). */
export async function removeSinkStream(host: MembershipHost, stream: StreamHandle): Promise<void> {
  if (host.closed()) return;
  const s = host.streams.get(stream.key);
  if (!s) return;
  host.streams.delete(stream.key);
  s.left = true;
  const { loops } = host;
  await loops.remove(stream.key, (group) => ![...host.streams.keys()].some((k) => loops.groupOf(k) === group));
  await host.acksSettled();
  await host.verifyReads([s]);
  try {
    // Still in the group with events pending: what turns idle there goes to the others.
    if ((await leaveStream(host.leaver(), s, true)) < 0) host.leftBehind(s);
  } catch (err) {
    // Not left (Redis away): the sweep leaves it later, close() too; forgotten, the group stayed for good (outside review V).
    host.leftBehind(s);
    throw toPulseError(err, `remove stream ${stream.name} from sink ${host.name}`);
  }
}
