/**
 * The buffers of a sink's subscriptions and what happens to the events they
 * drop unseen: given back (see `giveBack.ts`), or, for a `noAck` sink, lost
 * and said.
 */
import type { SinkEvent } from '../event.js';
import type { OwnershipGate } from '../subscription.js';
import { Fanout } from './fanout.js';
import { GiveBack, type GiveBackHost, type TakeBackParts, type TakeBackTarget } from './giveBack.js';
import { idsByStream } from './ids.js';
import { streamKey } from './keys.js';
import type { LossReport } from './lossReport.js';
import { claimRoom } from './sinkClaims.js';
import type { SinkSettings } from './sinkState.js';

/**
 * The buffers of a sink's subscriptions: their fanout, which gives back what
 * they drop unseen (not for `noAck` sinks: nothing of theirs is pending) and
 * takes it back for a subscriber that is there or comes within the grace
 * period, the gate that checks a buffered event is still ours before it is
 * handed out (`recheck`) and marks it taken as it is, and `givenBack` for
 * `close()`.
 */
export function sinkBuffers(
  settings: SinkSettings,
  host: Omit<GiveBackHost, 'subs'> & {
    readonly counters: { lost: number };
    readonly losses: LossReport;
    /** A subscription's buffer drained below full or emptied: claims waiting for room may go. */
    roomMade(): void;
  },
  recheck: (items: readonly SinkEvent[]) => Promise<void>,
  parts: () => TakeBackParts,
): { fanout: Fanout<SinkEvent>; gate: OwnershipGate<SinkEvent>; givenBack: () => Promise<void> } {
  const ready = (name: string) => {
    const s = parts().streams.get(streamKey(name));
    return s?.ready === true ? s : undefined;
  };
  const target: TakeBackTarget = {
    // Up to bufferSize, not the bound: a read resuming at the same time (which claims leave out of
    // their room, see claimRoom) may bring maxPolled more.
    room: () => claimRoom({ fanout, settings, readAhead: parts().readAhead }, settings.bufferSize),
    reads: (name) => ready(name) !== undefined,
    deliver: (name, entries, counts, sent) => {
      const s = ready(name);
      if (s) parts().holds.deliver(s, entries, counts, true, sent);
      return s !== undefined;
    },
  };
  const giveBack = new GiveBack(
    {
      ...host,
      subs: () => fanout.subs,
      // The read path finds a missing group itself while it reads (a subscription has room): two
      // checks applied at once could both report what went with the key.
      recover: (name) => (fanout.ready() ? Promise.resolve() : host.recover(name)),
    },
    settings.graceMs,
    target,
  );
  // Shared: each event goes to one subscription of the instance, as to one instance of the sink.
  const fanout = settings.noAck
    ? new Fanout<SinkEvent>(settings.bufferSize, {
        share: true,
        limit: settings.bufferSize + settings.maxPolled,
        // Acked as read: past the bound rather than lost (a claim and a read landing together).
        keepOverLimit: true,
        onDropped: (items) => noAckDropped(host, items),
      })
    : new Fanout<SinkEvent>(settings.bufferSize, {
        share: true,
        limit: settings.bufferSize + settings.maxPolled,
        onDropped: (items) => giveBack.dropped(items),
        onAdded: () => giveBack.resume(),
        onRoom: () => {
          giveBack.resume();
          host.roomMade();
        },
      });
  // Half the grace period: an event whose last hold is younger cannot have
  // been claimed by another consumer (claims need a full grace period idle).
  const gate = { staleMs: Math.floor(settings.graceMs / 2), check: recheck, taken: (ev: SinkEvent) => ev.markTaken() };
  return { fanout, gate, givenBack: () => giveBack.settled() };
}

/**
 * Events a `noAck` sink read (acked as read) and dropped without handing
 * them out: at `close()`, or when its last subscription left. Nothing can
 * bring them back, so they are lost, and said as every loss is (counted in
 * `counters.lost`, a `warn` line or a process warning).
 */
function noAckDropped(
  host: { readonly counters: { lost: number }; readonly losses: LossReport },
  items: readonly SinkEvent[],
): void {
  for (const [stream, ids] of idsByStream(items)) {
    host.counters.lost += ids.length;
    host.losses.lost(
      ids.length,
      { stream, ids },
      'events of a noAck sink read but never handed out are lost: acked as read, nothing can redeliver them',
    );
  }
}
