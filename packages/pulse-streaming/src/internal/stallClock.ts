/**
 * When events a sink read or claimed are known held by it: what the
 * ownership gate (subscription.ts) compares with the grace period before it
 * lets a buffered event out. A reply that waited in the socket through a
 * frozen process (SIGSTOP, a blocked event loop, a starved CPU), or on a slow
 * network, may hold events another instance has taken meanwhile: they must
 * be checked first.
 */
import { idTime } from './ids.js';

/**
 * The latest time Redis can have handed a read's entries over: when it was
 * sent, or for a blocking read, when its newest entry (`lastId`) was added if
 * that was later (Redis serves a blocked read right after the add).
 * Undefined: not known.
 */
export function servedAt(sentAt: number | undefined, blocking: boolean, lastId: string | undefined): number | undefined {
  if (sentAt === undefined || !blocking || lastId === undefined) return sentAt;
  return Math.max(sentAt, idTime(lastId));
}

/** Stalls remembered: a reply older than the oldest of them was handled long ago (the process ran since). */
const STALLS_KEPT = 32;

export class StallClock {
  /** Last tick of the beat timer. */
  #beat: number;
  /** The last gaps in the beats, oldest first: the tick before each, when it was seen, and until when a reply of unknown age counts as from before it. */
  readonly #stalls: Array<{ readonly before: number; readonly seenAt: number; readonly until: number }> = [];

  constructor(
    /** How often `beat()` is called (ms): a gap of four beats is a stall. */
    readonly beatMs: number,
    /** The sink's ack grace period (ms). */
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#beat = now();
  }

  /** A tick of the beat timer. */
  beat(): void {
    const now = this.now();
    if (now - this.#beat > 4 * this.beatMs) {
      this.#stalls.push({ before: this.#beat, seenAt: now, until: now + this.graceMs });
      if (this.#stalls.length > STALLS_KEPT) this.#stalls.shift();
    }
    this.#beat = now;
  }

  /**
   * When the events of a reply handled now are known held, given `servedAt`:
   * the latest time Redis can have handed them over (a command that does not
   * wait: when it was sent; a blocking read: when it was sent or its newest
   * entry was added, whichever is later).
   * - While the beats stop (frozen now, or the event loop blocked): the last one.
   * - Served before a stall: the last tick before the first stall since,
   *   however long ago it was seen (a starved process can handle a reply long
   *   after its timers ran again, through more stalls).
   * - Else `servedAt` (or now, if later: the server's clock may run ahead): a
   *   reply late for any other reason (a slow network) is as old as that.
   * - Without `servedAt`: replies handled within a grace period of a stall
   *   count as from before it, else now.
   */
  heldAt(servedAt?: number): number {
    const now = this.now();
    if (now - this.#beat > 4 * this.beatMs) return this.#beat;
    if (servedAt === undefined) {
      const last = this.#stalls[this.#stalls.length - 1];
      return last !== undefined && now < last.until ? last.before : now;
    }
    const since = this.#stalls.find((s) => servedAt <= s.seenAt);
    return Math.min(since !== undefined ? since.before : now, servedAt);
  }
}
