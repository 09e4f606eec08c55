/**
 * How far a sink's reads may go ahead of its subscribers.
 */

/**
 * The read-ahead budget of one sink, shared by all its loops (one per hash
 * slot group on a cluster). A loop with a backlog sends its next read before
 * the reply of the one out, so that Redis serves it while this process
 * decodes and hands out the previous batch: one read at a time left each
 * idle while the other worked (a sink over 6 streams on one node was idle
 * a fifth of the time, 0.51-0.69 x six raw loops, issue 19). A read goes
 * out ahead only while the fullest subscription's buffer plus what every
 * read out may bring plus what it may bring stays within `limit`: the
 * sink's hard bound `bufferSize + maxPolled`; claims count the reads sent
 * ahead too (`claimRoom`). The first read of a loop goes out as before, whenever
 * every buffer holds fewer than `bufferSize`: on a cluster, with one loop
 * per slot group, those first reads can still pass the bound by a read per
 * group, as they did before read-ahead.
 */
export class ReadAhead {
  /** Entries the reads out (of every loop sharing this budget) may still bring. */
  inFlight = 0;
  /**
   * Of those, what the reads sent ahead (behind another read of their loop)
   * may bring: what claims leave room for (`claimRoom`). Not the first read of
   * each loop: claims never counted it, and an idle sink's blocking read over
   * many streams would count as more than the bound, leaving no room to claim.
   */
  ahead = 0;

  constructor(
    /** Most entries buffered in a subscription and out in reads at once. */
    readonly limit: number,
  ) {}
}
