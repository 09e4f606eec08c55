/**
 * When events a sink read or claimed are known held by it: what the
 * ownership gate (subscription.ts) compares with the grace period before it
 * lets a buffered event out. A reply that waited in the socket through a
 * frozen process (SIGSTOP, a blocked event loop, a starved CPU), or on a slow
 * network, may hold events another instance has taken meanwhile: they must
 * be checked first.
 */
import { monotonicNow } from './clock.js';
/** When the command that read or claimed events was sent (this process's clock), and whether it may wait at Redis (a blocking read). */
export interface Sent {
  readonly at: number;
  readonly waits: boolean;
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
    private readonly now: () => number = monotonicNow,
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
   * When the events of a reply handled now are known held, given how their
   * command was `sent` (this process's clock only: the server's may differ).
   * - While the beats stop (frozen now, or the event loop blocked): the last one.
   * - Sent before a stall: the last tick before the first stall since, however
   *   long ago it was seen (a starved process can handle a reply long after its
   *   timers ran again, through more stalls).
   * - A command that does not wait at Redis (a checked read, a claim): at most
   *   when it was sent, as a reply late for another reason (a slow network) is
   *   that old. A blocking read may legitimately return long after it was sent:
   *   now (a network delay of its reply is not seen).
   * - Without `sent`: replies handled within a grace period of a stall count
   *   as from before it, else now.
   */
  heldAt(sent?: Sent): number {
    const now = this.now();
    if (now - this.#beat > 4 * this.beatMs) return this.#beat;
    if (sent === undefined) {
      const last = this.#stalls[this.#stalls.length - 1];
      return last !== undefined && now < last.until ? last.before : now;
    }
    const since = this.#stalls.find((s) => sent.at <= s.seenAt);
    const held = since !== undefined ? since.before : now;
    return sent.waits ? held : Math.min(held, sent.at);
  }
}
