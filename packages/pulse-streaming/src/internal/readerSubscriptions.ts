/**
 * What a reader hands its subscriptions, and what becomes of the events a
 * leaving subscription had not taken: the reader's cursor is past them, so
 * they are kept for the next subscription when none is left, and handed to
 * a remaining one that joined after they were read (see `Reader.unsubscribe`).
 */
import type { Event } from '../event.js';
import type { Logger } from '../logger.js';
import type { Fanout } from './fanout.js';

/** What the subscriptions' bookkeeping needs of its reader. */
export interface ReaderSubscriptionsHost {
  readonly fanout: Fanout<Event>;
  readonly logger: Logger;
  /** The reader is open (neither closed nor stopped by a fatal error). */
  open(): boolean;
  /** Names of the streams the reader reads now. */
  streamNames(): Set<string>;
}

export class ReaderSubscriptions {
  readonly #host: ReaderSubscriptionsHost;
  /** Events put in subscriptions' buffers (see `ReaderCounters.delivered`). */
  delivered = 0;
  /**
   * Events the last subscription left buffered, never handed out, as it
   * left: the next subscription gets them first. At most what one
   * subscription buffers.
   */
  #unseen: Event[] = [];
  /** Events handed to the fanout so far: a subscription's buffer is always the last of them it has not taken. */
  #seq = 0;
  /**
   * Per subscription, the number (in `#seq`'s count) of the first event it
   * has had: it has had every one from there on (its join, or earlier once a
   * leaving sibling handed it older ones, see `#handOver`).
   */
  readonly #firstHad = new WeakMap<object, number>();

  constructor(host: ReaderSubscriptionsHost) {
    this.#host = host;
  }

  /** Hands an event read to every subscription. */
  deliver(event: Event): void {
    this.delivered++;
    this.#seq++;
    this.#host.fanout.deliver(event);
  }

  /** A subscription joined: it gets what the last one left unread first, before any read can land. */
  joined(sub: object): void {
    this.#firstHad.set(sub, this.#seq + 1);
    const unseen = this.#unseen;
    if (unseen.length === 0) return;
    this.#unseen = [];
    // Replies are handled later: the order stays that of the stream.
    for (const event of unseen) this.deliver(event);
  }

  /** The kept events of stream `name` go with it (`removeStream`). */
  streamRemoved(name: string): void {
    this.#unseen = this.#unseen.filter((ev) => ev.streamName !== name);
  }

  /** Nothing is kept once the reader closes. */
  clear(): void {
    this.#unseen = [];
  }

  /**
   * Told of a subscription's buffered events as it leaves, and of events
   * read while none is there: with other subscriptions there, those that
   * joined after some of them were read get those (`#handOver`); with none
   * (and the reader open), nobody got them, and they wait for the next
   * subscription, uncounted until then.
   */
  dropped(items: readonly Event[]): void {
    if (!this.#host.open()) return;
    if (this.#host.fanout.subs.size > 0) {
      this.#handOver(items);
      return;
    }
    for (const event of items) this.#unseen.push(event);
    this.delivered -= items.length;
  }

  /**
   * A subscription left with `items` buffered: the last events handed to the
   * fanout, none taken (every subscription's buffer ends at the newest). A
   * remaining subscription that joined after some of them were read never
   * had those (a new loop started before the old one was left: outside
   * review F, they reached nobody): they go to it, ahead of its own, oldest
   * first, when that keeps its order, that is when it has taken nothing
   * since; one that took later events already cannot have them in order,
   * and a warning says how many it does not get. Events of a stream removed
   * since are not handed over (as kept ones are dropped by `streamRemoved`).
   */
  #handOver(items: readonly Event[]): void {
    // items[i] is event number from + 1 + i.
    const from = this.#seq - items.length;
    let skipped = 0;
    for (const sub of this.#host.fanout.subs) {
      const first = this.#firstHad.get(sub) ?? from + 1;
      const missing = Math.min(items.length, first - 1 - from);
      if (missing <= 0) continue;
      if (sub.size !== this.#seq - first + 1) {
        skipped = Math.max(skipped, missing);
        continue;
      }
      const names = this.#host.streamNames();
      sub.pushFront(items.slice(0, missing).filter((ev) => names.has(ev.streamName)));
      this.#firstHad.set(sub, from + 1);
    }
    if (skipped > 0)
      this.#host.logger.warn(
        { count: skipped },
        'a subscription left events unread that a newer subscription cannot have in order (it took later ones already): not handed to it',
      );
  }
}
