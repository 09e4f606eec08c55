/**
 * Giving back events a sink read but never handed to a subscriber: a
 * `break` out of a `for await` loop, an aborted `process()`, `close()`, or a
 * read that returned after the last subscriber left. They stay pending with
 * their idle time untouched, so they go to another consumer after the grace
 * period as before (API.md, `close()`), but their delivery count goes back
 * to what it was before the read: no code saw them, so the read must not
 * count toward `maxDeliveries` (with `maxDeliveries: 1` every such event was
 * dead-lettered unseen) nor show as a redelivery.
 */
import type { SinkEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { Fanout, type OwnershipGate, type Subscription } from '../subscription.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { streamKey } from './keys.js';
import { errorText } from './redisErrors.js';
import { Script } from './script.js';

/**
 * Sets the delivery count of events still pending for this consumer with
 * the count they were read with back by one, keeping their idle time. An
 * event another consumer took, one delivered again since (another count),
 * and one deleted from the stream (XCLAIM would drop it from the pending
 * list: the read path reports it) are left as they are.
 * KEYS: stream. ARGV: group, consumer, then id, count pairs. Returns how many were given back.
 */
export const giveBackScript = new Script(
  'giveBack',
  `local given = 0
for i = 3, #ARGV, 2 do
  local id, count = ARGV[i], tonumber(ARGV[i + 1])
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p > 0 and p[1][2] == ARGV[2] and tonumber(p[1][4]) == count and count > 0
    and #redis.call('XRANGE', KEYS[1], id, id) > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', p[1][3], 'RETRYCOUNT', count - 1, 'JUSTID')
    given = given + 1
  end
end
return given`,
);

/** What giving back needs of the sink. */
export interface GiveBackHost {
  readonly name: string;
  readonly consumerName: string;
  /** The connection that also carries the holds of buffered events: a hold sent before a give-back runs before it. */
  readonly control: OwnedConnection;
  readonly logger: Logger;
  /** The subscriptions still there: what one of them still has buffered is not given back. */
  subs(): Iterable<Subscription<SinkEvent>>;
}

/** At most this many events per script call. */
const CHUNK = 500;

export class GiveBack {
  readonly #pending = new Set<Promise<void>>();
  /** Dropped this tick, by stream: a read reply that came with no subscriber drops its events one by one. */
  #queued = new Map<string, SinkEvent[]>();

  constructor(private readonly host: GiveBackHost) {}

  /**
   * Events dropped from a buffer (see `Fanout`): gives back those no
   * subscription took and none still holds, in one call per stream and tick
   * (at most CHUNK events each). Not awaited by the caller; see `settled`.
   */
  dropped(items: readonly SinkEvent[]): void {
    const held = new Set<SinkEvent>();
    for (const sub of this.host.subs()) for (const ev of sub.queued()) held.add(ev);
    const first = this.#queued.size === 0;
    for (const ev of items) {
      if (ev.taken || ev.settled || held.has(ev)) continue;
      const list = this.#queued.get(ev.streamName) ?? [];
      list.push(ev);
      this.#queued.set(ev.streamName, list);
    }
    if (first && this.#queued.size > 0) {
      const p = Promise.resolve()
        .then(() => this.#flush())
        .finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  /** Resolves once every give-back dropped so far is done (failures are logged). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #flush(): Promise<void> {
    const queued = this.#queued;
    this.#queued = new Map();
    const sent: Array<Promise<void>> = [];
    for (const [name, events] of queued)
      for (let i = 0; i < events.length; i += CHUNK) sent.push(this.#send(name, events.slice(i, i + CHUNK)));
    await Promise.all(sent);
  }

  async #send(name: string, events: readonly SinkEvent[]): Promise<void> {
    const { control, consumerName, logger } = this.host;
    const args: Array<string | number> = [this.host.name, consumerName];
    for (const ev of events) args.push(ev.id, ev.deliveryCount);
    try {
      const given = Number(await evalScript(control, giveBackScript, [streamKey(name)], args));
      if (given > 0) logger.debug({ stream: name, count: given }, 'events never handed out given back, delivery count restored');
    } catch (err) {
      // Nothing is lost: they stay pending and come back after the grace period, counted as delivered once more.
      logger.warn(
        { stream: name, count: events.length, err: errorText(err) },
        'could not give back events never handed out: they come back with their delivery count raised',
      );
    }
  }
}

/**
 * The buffers of a sink's subscriptions: their fanout, which gives back what
 * they drop unseen (not for `noAck` sinks: nothing of theirs is pending), the
 * gate that checks a buffered event is still ours before it is handed out
 * (`recheck`) and marks it taken as it is, and `givenBack` for `close()`.
 */
export function sinkBuffers(
  settings: { readonly bufferSize: number; readonly noAck: boolean; readonly graceMs: number },
  host: Omit<GiveBackHost, 'subs'>,
  recheck: (items: readonly SinkEvent[]) => Promise<void>,
): { fanout: Fanout<SinkEvent>; gate: OwnershipGate<SinkEvent>; givenBack: () => Promise<void> } {
  const giveBack = new GiveBack({ ...host, subs: () => fanout.subs });
  const fanout = new Fanout<SinkEvent>(settings.bufferSize, settings.noAck ? undefined : (items) => giveBack.dropped(items));
  // Half the grace period: an event whose last hold is younger cannot have
  // been claimed by another consumer (claims need a full grace period idle).
  const gate = { staleMs: Math.floor(settings.graceMs / 2), check: recheck, taken: (ev: SinkEvent) => ev.markTaken() };
  return { fanout, gate, givenBack: () => giveBack.settled() };
}
