/**
 * Claiming idle events of one stream: the claim script, what its reply
 * says (claimed, lost, dead-lettered, to dead-letter by the client), and
 * claiming again at once while a claim comes back full and the buffers have
 * room, so that a fresh instance takes over a large pending list at the pace
 * of Redis, never holding more than the buffer bound.
 */

import { sleep } from './backoff.js';
import { claimedEntries } from './claimedEntries.js';
import { monotonicNow } from './clock.js';
import { ackMoved, keptWhileMoved, MAX_DELIVERIES_REASON, type MoveHost } from './deadLetterMove.js';
import { evalScript } from './driver.js';
import { keepCounts } from './heldHere.js';
import { heldAgain } from './letGo.js';
import { refusedAsMigrating } from './migratingRead.js';
import { claimWithoutDelays } from './migratingWrites.js';
import { errorText, isReplyError } from './redisErrors.js';
import { entries, type RawEntry, str } from './replies.js';
import { claim } from './scripts.js';
import { type MaintenanceHost, recoverUnread } from './sinkHosts.js';
import type { SinkStream } from './sinkState.js';

/** Most events one claim takes (as `XAUTOCLAIM ... COUNT 1000` would). */
export const CLAIM_MAX = 1000;

/**
 * The room worth a claim: half a full claim (a claim of a few events costs a
 * round trip all the same; the consumers drain their buffers meanwhile).
 */
export function roomToClaim(settings: { readonly bufferSize: number; readonly maxPolled: number }): number {
  const most = Math.min(settings.maxPolled, CLAIM_MAX);
  return Math.max(1, Math.floor(Math.min(most, settings.bufferSize + settings.maxPolled) / 2));
}

/**
 * How many more events this instance can take in (see `Fanout.room`), less
 * what the sink's reads sent ahead may still bring (`ReadAhead.ahead`: with
 * two reads out, claims that ignored them could pass the bound by two reads), 0
 * while no subscriber took or waited for an event within the grace period:
 * a stuck `for await` loop does not take its own events back, claim after
 * claim, until they are dead-lettered; they go to the other instances
 * through the sink-wide work set. Only subscribers that are not stalled
 * count (see `Fanout.releaseStalled`): what is claimed goes to one of them.
 */
export function claimRoom(host: Pick<MaintenanceHost, 'fanout' | 'settings' | 'readAhead'>, limit: number): number {
  const activeSince = monotonicNow() - host.settings.graceMs;
  for (const sub of host.fanout.subs) {
    if (!sub.ended && sub.lastActivity >= activeSince) return Math.max(0, host.fanout.room(limit) - host.readAhead.ahead);
  }
  return 0;
}

/** How a burst of claims on one stream ended. */
export type BurstEnd =
  /** Nothing more to claim for now (the last claim was not full). */
  | 'done'
  /** More may wait, but the buffers are (nearly) full or the burst must yield to the sweep (see `until`). */
  | 'more'
  /** The stream or its group is missing: the read path recovers it (or its check ran, see `recoverUnread`). */
  | 'gone';

export class SinkClaims {
  constructor(
    private readonly host: MaintenanceHost,
    /**
     * The live instances, and those with a longer grace period than this
     * one's (see `Beat.longerGraces`): an event is claimed once idle for the
     * longest grace period of the live instances holding events on its
     * stream, or a short-grace instance would take what a long-grace one
     * still holds (it refreshes its holds on its own, slower, schedule).
     */
    private readonly peers: () => { readonly live: readonly string[]; readonly longerGraces: ReadonlyMap<string, number> },
    /**
     * A claim skipped events whose nack delay runs for `ms` more: claim
     * again then, so that a delay is kept to within a few ms by whichever
     * instance claims (the one that nacked may be gone), not at its next sweep.
     */
    private readonly dueIn: (streamKey: string, ms: number) => void,
    /** Aborts when the sink's background work stops: a dead letter's ack is retried until then at most. */
    private readonly closed: AbortSignal,
  ) {}

  /**
   * Claims idle events of `s` for as long as each claim comes back full and
   * the buffers have room for more (the hard bound bufferSize + maxPolled:
   * the read loop only reads while a buffer holds fewer than bufferSize, so
   * orphaned events get in even when every consumer is saturated, and the
   * bound still holds). Stops when the buffers have less room than is
   * worth a claim (the caller comes back once they drained), or at `until`
   * (ms), when the sweep must run. From a sweep, the lease holder claims with
   * no room too, to dead-letter.
   */
  async burst(s: SinkStream, until: number, fromSweep: boolean): Promise<BurstEnd> {
    const { bufferSize, maxPolled } = this.host.settings;
    const bound = bufferSize + maxPolled;
    const most = Math.min(maxPolled, CLAIM_MAX);
    let first = fromSweep;
    for (;;) {
      const room = Math.min(most, claimRoom(this.host, bound));
      if (room < roomToClaim(this.host.settings)) {
        // Dead letters only: the lease holder moves them even with full buffers, once a sweep.
        const deadLetters = this.host.settings.maxDeliveries !== undefined;
        if (room === 0 && first && deadLetters && s.leaseHeld && (await this.#claimOnce(s, most, 0)) === undefined) return 'gone';
        return 'more';
      }
      first = false;
      const r = await this.#claimOnce(s, room, room);
      if (r === undefined) return 'gone';
      if (r.claimed < room && r.progress < room) return 'done';
      if (monotonicNow() >= until) return 'more';
    }
  }

  /**
   * One claim of at most `limit` events among the first `count` idle ones.
   * Returns how many were claimed, and how many of the scanned ones were
   * settled (claimed, dead-lettered, found lost) and will not be scanned
   * again; undefined when the group or the stream is missing.
   */
  async #claimOnce(s: SinkStream, count: number, limit: number): Promise<{ claimed: number; progress: number } | undefined> {
    // Until all it took is handed out, acks that pass are noted: it may have run before them (heldHere.ts).
    const since = this.host.claimSent(s.stream.name);
    try {
      return await this.#claim(s, count, limit, since);
    } finally {
      this.host.claimDone(s.stream.name, since);
    }
  }

  /** `#claimOnce`, sent after `since` acks passed. */
  async #claim(
    s: SinkStream,
    count: number,
    limit: number,
    since: number,
  ): Promise<{ claimed: number; progress: number } | undefined> {
    const host = this.host;
    const inline = !host.driver.isCluster || s.deadKey === s.stream.key;
    let reply: unknown[];
    const sentAt = monotonicNow();
    const { live, longerGraces } = this.peers();
    // noAck: only events of instances that are gone, acked as claimed (see `claim`).
    const { noAck } = host.settings;
    const tail = [noAck ? '1' : '0', longerGraces.size, ...[...longerGraces].flat(), ...(noAck ? live : [])];
    const keys = { stream: s.stream.key, dead: inline ? s.deadKey : s.stream.key, delays: s.keys.delays };
    const args = [
      host.name,
      host.consumerName,
      host.settings.graceMs,
      count,
      host.settings.maxDeliveries ?? 0,
      // Our own events at max deliveries, when this instance may hold them, go to the client (see
      // `#claimOnce` below); else moved here, in Redis (a 4 MB entry copied out and back in
      // through the client needed twice its size of headroom: fatalOom).
      inline ? (host.holdsAny(s.stream.name) ? '2' : '1') : '0',
      host.name,
      s.stream.name,
      limit,
      ...tail,
    ];
    try {
      try {
        reply = (await evalScript(host.control, claim, [keys.stream, keys.dead, keys.delays], args)) as unknown[];
      } catch (err) {
        // Its slot migrates and the delays set is missing (nothing delayed): see migratingWrites.ts.
        const alone = refusedAsMigrating(err) ? await claimWithoutDelays(host.control, claim, keys, args) : undefined;
        if (alone === undefined) throw err;
        reply = alone as unknown[];
      }
    } catch (err) {
      if (isReplyError(err, 'NOGROUP')) {
        // The read path recovers the group, while it reads; else its check runs now (a claim from
        // a sweep runs with no subscriber too). Failed: the burst's caller sweeps the stream again.
        await recoverUnread(host, s);
        return undefined;
      }
      throw err;
    }
    const [claimed, lost, dead, toMove, nextDue] = reply as [unknown[], unknown[], unknown[], unknown[], unknown];
    if (Number(nextDue) >= 0) this.dueIn(s.stream.key, Number(nextDue));
    if (lost.length > 0) {
      host.dropBuffered(s.stream.name, lost.map(str));
      host.countLost(s.stream.name, lost.length, 'events trimmed or deleted before they were acked', lost.map(str));
    }
    if (dead.length > 0) {
      // This instance may still buffer some (given back by a stalled subscriber): never hand them out now.
      host.dropBuffered(s.stream.name, dead.map(str));
      host.counters.deadLettered += dead.length;
      host.logger.warn(
        { stream: s.stream.name, ids: dead.map(str), deadLetterStream: s.deadName },
        'events dead-lettered after max deliveries',
      );
    }
    // At max deliveries and still held here (a handler runs it, or a held buffer has it: its
    // keep-alive came late): kept, its idle time reset by the claim; the handler's ack or nack
    // settles it. Moved, an event a handler then finished was dead-lettered (SEMANTICS.md section 9).
    const moveId = (m: unknown) => str((m as unknown[])[0]);
    const moving = this.#notHeld(
      s,
      toMove,
      moveId,
      'events at max deliveries this instance still holds or acked meanwhile (a keep-alive came late): kept, not dead-lettered',
      since,
      new Map(toMove.map((m) => [moveId(m), Number((m as unknown[])[1])])),
    ).rest;
    if (moving.length > 0) {
      host.dropBuffered(s.stream.name, moving.map(moveId));
      await this.#moveDeadLetters(s, moving);
    }
    const taken = claimed.length / 2;
    if (taken > 0) await this.#deliverClaimed(s, claimed, sentAt, since);
    return { claimed: taken, progress: taken + lost.length + dead.length + toMove.length };
  }

  /**
   * Reads and hands out the events a claim took (`pairs`: id, delivery
   * count), then acks and counts lost those deleted since the claim. A read
   * that fails is tried again for up to half a grace period (no other
   * instance can claim them before a full one); then they stay pending here,
   * idle from the claim, and come back after the grace period with their
   * delivery count raised, as when a claim's reply is lost with the connection
   * (a `noAck` sink's are counted lost: its claim acked them).
   */
  async #deliverClaimed(s: SinkStream, pairs: readonly unknown[], sentAt: number, since: number): Promise<void> {
    const host = this.host;
    const ids: string[] = [];
    const countOf = new Map<string, number>();
    for (let i = 0; i < pairs.length; i += 2) {
      const id = str(pairs[i]);
      ids.push(id);
      countOf.set(id, Number(pairs[i + 1]));
    }
    let read: { got: RawEntry[]; gone: string[] };
    try {
      read = await this.#read(s, ids, sentAt + host.settings.graceMs / 2);
    } catch (err) {
      // A noAck sink's claim acked them: nothing will bring them back.
      if (host.settings.noAck)
        host.countLost(s.stream.name, ids.length, 'events a noAck sink claimed (acked as claimed) could not be read', ids);
      throw err;
    }
    const { gone } = read;
    // Taken back from this very consumer while it holds them (a handler here runs one, or a held
    // buffer here has it): a keep-alive came late, not a fault. Kept where they are: handed out
    // again, a handler ran a second time what one still ran (heldHere.ts). Those whose handler
    // finished and whose ack passed since the claim went out are acked: handed out again, a duplicate.
    const { rest: got, held } = this.#notHeld(
      s,
      read.got,
      (e) => e[0],
      'claimed events this instance holds or acked meanwhile (a keep-alive came late): kept here, not handed out again',
      since,
      countOf,
    );
    for (const id of held) heldAgain(s, id);
    if (got.length > 0) {
      // A copy still buffered here (given back by a stalled subscriber) is superseded by the claimed one.
      host.dropBuffered(
        s.stream.name,
        got.map((e) => e[0]),
      );
      host.deliver(
        s,
        got,
        got.map((e) => countOf.get(e[0]) ?? 1),
        true,
        { at: sentAt, waits: false },
      );
    }
    // After the hand-out: the held check and it are one step (a stalled buffer's copy drained meanwhile is a duplicate).
    if (held.size > 0) await keepCounts(host, s.stream.key, held, countOf);
    if (gone.length > 0) await this.#claimedGone(s, gone);
  }

  /**
   * Splits what a claim sent at `since` took (with the delivery counts `countOf` it left) into what
   * this instance still holds or settled since (heldHere.ts: said on a debug line, `what`) and the rest.
   */
  #notHeld<T>(
    s: SinkStream,
    items: readonly T[],
    idOf: (item: T) => string,
    what: string,
    since: number,
    countOf: ReadonlyMap<string, number>,
  ): { rest: readonly T[]; held: Set<string> } {
    const held = items.length > 0 ? this.host.heldHere(s.stream.name, items.map(idOf), since, countOf) : new Set<string>();
    if (held.size === 0) return { rest: items, held };
    this.host.logger.debug({ stream: s.stream.name, ids: [...held] }, what);
    return { rest: items.filter((item) => !held.has(idOf(item))), held };
  }

  /** The entries of `ids` of `s` (see `claimedEntries`), tried again while the connection is away, until `deadline`. */
  async #read(s: SinkStream, ids: readonly string[], deadline: number): Promise<{ got: RawEntry[]; gone: string[] }> {
    for (let delay = 25; ; delay *= 2) {
      try {
        return await claimedEntries(this.host.control, s.stream.key, ids);
      } catch (err) {
        if (this.closed.aborted || monotonicNow() + delay > deadline) throw err;
        this.host.logger.debug(
          { stream: s.stream.name, count: ids.length, err: errorText(err) },
          'reading claimed events failed, retrying',
        );
        await sleep(delay, this.closed);
      }
    }
  }

  /**
   * Claimed events deleted or trimmed before they were read: acked, then
   * counted lost, as many as the ack found (none: the key went, and what
   * went with it is the stream check's to report). An ack that fails leaves
   * them pending: the next claim finds them deleted and counts them. A
   * `noAck` sink's are counted at once (its claim acked them).
   */
  async #claimedGone(s: SinkStream, gone: string[]): Promise<void> {
    const host = this.host;
    host.dropBuffered(s.stream.name, gone);
    const why = 'events trimmed or deleted before they were acked';
    // A noAck sink's claim acked them already: lost, whatever an XACK would find.
    if (host.settings.noAck) {
      host.countLost(s.stream.name, gone.length, why, gone);
      return;
    }
    let acked: number;
    try {
      acked = Number(await host.control.send(['XACK', s.stream.key, host.name, ...gone], s.stream.key));
    } catch (err) {
      host.logger.warn(
        { stream: s.stream.name, count: gone.length, err: errorText(err) },
        'could not ack claimed events deleted before they were read: the next claim counts them',
      );
      return;
    }
    if (acked > 0) host.countLost(s.stream.name, acked, why, gone);
  }

  /**
   * Cluster (the dead-letter stream may live on another node), or an entry
   * with more fields than a script can copy (`LUA_CALL_MAX_ARGS`). Add first, then
   * ack: never in neither; kept ours meanwhile and the ack retried through a
   * failover, so that no instance moves them a second time (deadLetterMove.ts).
   */
  async #moveDeadLetters(s: SinkStream, toMove: readonly unknown[]): Promise<void> {
    const host = this.host;
    const driver = host.driver;
    const mover: MoveHost = {
      graceMs: host.settings.graceMs,
      logger: host.logger,
      closed: this.closed,
      keep: (ids) => host.touch(host.control, s.stream.name, 0, ids),
    };
    // Those not acked yet, in order: the ones kept ours.
    const left = toMove.map((m) => str((m as unknown[])[0]));
    await keptWhileMoved(
      mover,
      () => left,
      async () => {
        const moved: string[] = [];
        for (const m of toMove) {
          const [rawId, n] = m as [unknown, unknown];
          const id = str(rawId);
          const found = entries(await driver.send(['XRANGE', s.stream.key, id, id], s.stream.key));
          const entry = found[0];
          if (entry) {
            await driver.send(
              [
                'XADD',
                s.deadKey,
                '*',
                ...entry[1],
                'source_stream',
                s.stream.name,
                'source_sink',
                host.name,
                'source_id',
                id,
                'deliveries',
                String(n),
                'reason',
                MAX_DELIVERIES_REASON,
              ],
              s.deadKey,
            );
            host.counters.deadLettered++;
            moved.push(id);
          } else {
            host.countLost(s.stream.name, 1, 'event trimmed or deleted before it could be dead-lettered', [id]);
          }
          await ackMoved(mover, s.stream.name, id, () => driver.send(['XACK', s.stream.key, host.name, id], s.stream.key));
          left.shift();
        }
        // Said as those the claim script moves are (a cluster's went unsaid).
        if (moved.length > 0)
          host.logger.warn(
            { stream: s.stream.name, ids: moved, deadLetterStream: s.deadName },
            'events dead-lettered after max deliveries',
          );
      },
    );
  }
}
