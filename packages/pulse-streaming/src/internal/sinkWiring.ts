/**
 * The parts of a sink instance and how they are wired to each other: its
 * buffers (fanout, give-back, ownership gate), acks, holds, reads and read
 * loops, and the loss report. `Sink` (sink.ts) builds them once, in its
 * constructor, and keeps its public surface; what the parts need of the
 * sink itself (its background work, recovery, failure) comes through
 * {@link SinkWiring}, read late: the maintenance starts after the parts.
 */
import type { SinkCounters } from '../counters.js';
import type { PulseError } from '../errors.js';
import type { EventOwner, SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { OwnershipGate } from '../subscription.js';
import { SinkAcks } from './acks.js';
import { monotonicNow } from './clock.js';
import type { OwnedConnection } from './driver.js';
import { Rechecks } from './expiryLoss.js';
import type { Fanout } from './fanout.js';
import { heldIds } from './heldHere.js';
import { streamKey } from './keys.js';
import { forgetIds, LetGoLog } from './letGo.js';
import type { ReadLoops } from './loops.js';
import { LossReport } from './lossReport.js';
import { ReadAhead } from './readAhead.js';
import { sinkBuffers } from './sinkBuffers.js';
import { SinkHolds } from './sinkHolds.js';
import type { SinkMaintenance } from './sinkMaintenance.js';
import { SinkReads } from './sinkRead.js';
import { awaitRedisLoss, rolledBack } from './sinkRollback.js';
import type { SinkSettings, SinkStream } from './sinkState.js';
import type { StreamHandle } from './streamHandle.js';

/** What the parts of a sink need of the sink itself. */
export interface SinkWiring {
  readonly main: StreamHandle;
  readonly name: string;
  readonly consumerName: string;
  readonly settings: SinkSettings;
  readonly control: OwnedConnection;
  readonly logger: Logger;
  readonly counters: SinkCounters;
  /** By stream key: the sink's own map, which addStream and removeStream change. */
  readonly streams: Map<string, SinkStream>;
  /** The sink its events name as theirs (`ev.ack()` goes to it). */
  readonly owner: EventOwner;
  /** Aborts when the sink closes or fails. */
  readonly closed: AbortSignal;
  /** The background work, once started (after the parts). */
  maintenance(): SinkMaintenance | undefined;
  /** The read path's check of stream `name`, one at a time (`Sink.#recover`). */
  recover(name: string): Promise<void>;
  fail(err: PulseError): void;
  /** The control connection while the sink is open, else undefined (acks go on the client's). */
  openControl(): OwnedConnection | undefined;
}

/** The parts of a sink instance, wired (see {@link wireSink}). */
export interface WiredSink {
  readonly losses: LossReport;
  readonly fanout: Fanout<SinkEvent>;
  /** Makes sure buffered events are still ours before they are handed out (see `OwnershipGate`). */
  readonly gate: OwnershipGate<SinkEvent>;
  /** Resolves once the events dropped unseen so far are given back (see giveBack.ts). */
  readonly givenBack: () => Promise<void>;
  readonly acks: SinkAcks;
  readonly holds: SinkHolds;
  readonly reads: SinkReads;
  readonly readAhead: ReadAhead;
  readonly loops: ReadLoops<SinkEvent>;
}

/** Builds the parts of a sink instance and wires them (see the file's comment). */
export function wireSink(w: SinkWiring): WiredSink {
  const { main, name, consumerName, settings, control, logger, counters, streams, closed } = w;
  // What every part of the sink knows of it.
  const base = { name, consumerName, control, logger, counters };
  // The events this instance let go of unhandled, for the loss that may take them (see letGo.ts).
  const letGoLog = new LetGoLog();
  // Given back (GiveBack) or nacked (SinkHolds): recorded for a loss of Redis' that may take them.
  const letGo = (stream: string, ids: readonly string[]) => letGoLog.add(streams.get(streamKey(stream)), ids);
  // Without a logger of the user's, losses are process warnings: never silent by default.
  const losses = new LossReport(main.hasLogger ? logger : undefined, (s) => `sink ${name} on stream ${s ?? main.name}`);
  // Assigned below: the closures that use them run only once the sink is built.
  let holds: SinkHolds;
  let reads: SinkReads;
  let readAhead: ReadAhead;
  let loops: ReadLoops<SinkEvent>;
  // Checks for quiet streams whose last check an ack may have preceded (see expiryLoss.ts).
  const rechecks = new Rechecks(streams, (list) => reads.verifyReads(list), closed);
  const buffers = sinkBuffers(
    settings,
    {
      ...base,
      closed,
      losses,
      vanished: (stream, ids) => holds.lostVanished(stream, ids, 'released from a stalled subscriber'),
      groupGone: (stream, ids) => holds.groupGone(stream, ids, 'released from a stalled subscriber'),
      recover: (stream) => w.recover(stream),
      letGo,
      roomMade: () => w.maintenance()?.roomMade(),
    },
    (items) => holds.recheck(items),
    () => ({ streams, holds, readAhead }),
  );
  const { fanout } = buffers;
  // Told of each XACK that passed: the expiry estimate, the delays set of events deleted while handled, the claims.
  const onAcked: Rechecks['onAcked'] = (stream, ids, acked, sentAt, repliedAt) => {
    rechecks.onAcked(stream, ids, acked, sentAt, repliedAt);
    holds.heldGone.acked(stream, ids);
    // A claim under way may have taken them before the XACK ran: not handed out again (heldHere.ts).
    holds.running.settled(stream, ids);
  };
  const acks = new SinkAcks(main.driver, name, counters, logger, onAcked, {
    conn: () => w.openControl(),
    forMs: settings.graceMs,
  });
  holds = new SinkHolds({
    ...base,
    driver: main.driver,
    fanout,
    closed,
    graceMs: settings.graceMs,
    matches: settings.matches,
    noAck: settings.noAck,
    owner: w.owner,
    heldAt: (sent) => w.maintenance()?.heldAt(sent) ?? monotonicNow(),
    losses,
    recover: (stream) => w.recover(stream),
    holders: () => w.maintenance()?.holders,
    rolledBack: (stream, id) => rolledBack(streams.get(streamKey(stream)), id),
    letGo,
    counted: (stream, ids) => forgetIds(streams.get(streamKey(stream)), ids),
    awaitRedisLoss: (stream, ids, how, count) => awaitRedisLoss(streams.get(streamKey(stream)), ids, how, count),
    acking: (stream) => acks.acking(stream),
  });
  reads = new SinkReads({
    ...base,
    settings,
    cluster: main.driver.isCluster,
    streams,
    loops: () => loops,
    deliver: (s, entries, counts, redelivery, sent) => holds.deliver(s, entries, counts, redelivery, sent),
    countLost: (stream, count, why, ids) => holds.countLost(stream, count, why, ids),
    maybeLost: (stream, why, ids) => holds.maybeLost(stream, why, ids),
    checked: (s) => rechecks.expiring(s),
    // Also those kept in the delays set by an in-progress touch (inProgress() of a `for await` loop's
    // event, which no run tracks): their ack or nack decides.
    heldNow: (stream) => new Set([...heldIds(fanout, holds.running, stream), ...holds.heldGone.ids(stream)]),
    fail: (err) => w.fail(err),
    streamGone: (s, before) => {
      // Looked for again within a quarter grace period, not at the next sweep (up to half of it).
      if (!s.ready) w.maintenance()?.streamAway();
      return holds.streamGone(s, before);
    },
  });
  // Shared by the loops of every slot group and the claims: the bound is the sink's.
  readAhead = new ReadAhead(settings.bufferSize + settings.maxPolled);
  loops = reads.newLoops(main.driver, fanout, readAhead);
  return { losses, fanout, gate: buffers.gate, givenBack: buffers.givenBack, acks, holds, reads, readAhead, loops };
}
