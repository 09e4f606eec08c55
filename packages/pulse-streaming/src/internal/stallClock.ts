/**
 * When events a sink read or claimed are known held by it: what the
 * ownership gate (subscription.ts) compares with the grace period before it
 * lets a buffered event out. A reply that waited in the socket through a
 * frozen process (SIGSTOP, a blocked event loop, a starved CPU) may hold
 * events another instance has taken meanwhile: they must be checked first.
 */
export class StallClock {
  /** Last tick of the beat timer. */
  #beat: number;
  /** The last gap in the beats: the tick before it, when it was seen, and until when a reply of unknown age counts as from before it. */
  #stall: { readonly before: number; readonly seenAt: number; readonly until: number } | undefined;

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
    if (now - this.#beat > 4 * this.beatMs) this.#stall = { before: this.#beat, seenAt: now, until: now + this.graceMs };
    this.#beat = now;
  }

  /**
   * When the events of a reply handled now are known held: now, unless the
   * process stalled since the command was sent (`sentAt`, ms). Then Redis
   * may have served it before or during the stall, so: the last tick before
   * the stall, however long ago the stall was seen (a starved process can
   * handle a reply long after its timers ran again). Without `sentAt`,
   * replies handled within a grace period of a stall count as from before it.
   * While the beats stop (frozen now, or the event loop blocked), the last one.
   */
  heldAt(sentAt?: number): number {
    const now = this.now();
    if (now - this.#beat > 4 * this.beatMs) return this.#beat;
    const stall = this.#stall;
    if (stall === undefined) return now;
    if (sentAt !== undefined) return sentAt <= stall.seenAt ? stall.before : now;
    return now < stall.until ? stall.before : now;
  }
}
