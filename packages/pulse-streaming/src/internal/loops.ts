/**
 * The read loops of one reader or sink. On one Redis node a single loop reads
 * every stream; on a cluster, multi-key reads only work within one hash slot,
 * so streams are grouped by slot and each group gets its own loop and
 * blocking connection. All loops feed the same subscriptions.
 */
import type { Logger } from '../logger.js';
import { sleep } from './backoff.js';
import type { Driver, OwnedConnection } from './driver.js';
import type { Fanout } from './fanout.js';
import { MigrationWatch } from './migrationWatch.js';
import { blockedElsewhere, NODE_WATCH_MS, type WatchControl } from './nodeWatch.js';
import type { ReadLoop } from './readLoop.js';
import { errorText, toPulseError } from './redisErrors.js';
import { sharedAbort } from './signals.js';
import { slotOf } from './slot.js';

export class ReadLoops<T> {
  readonly #loops = new Map<number, ReadLoop<T>>();
  readonly #opening = new Map<number, Promise<void>>();
  #started = false;
  #stopped = false;
  #retiredReconnects = 0;
  /** Groups whose loop was retired to read elsewhere, and whose new connection could not be opened yet. */
  readonly #unopened = new Set<number>();
  /** Of those, the node each one's read blocked on, silent: not asked for the slot table again (rootNodes.ts). */
  readonly #silent = new Map<number, string>();
  readonly #watching = sharedAbort();
  /** Loops the watch is stopping: `stop()` waits for them too (their connections closed). */
  readonly #retiring = new Set<Promise<void>>();
  /** Slots whose reads Redis refused as they migrate (their reads block `blockMs`): see migrationWatch.ts. */
  readonly #migrations: MigrationWatch;

  constructor(
    private readonly driver: Driver,
    private readonly connectionName: string,
    private readonly logger: Logger,
    private readonly make: (group: number, conn: OwnedConnection) => ReadLoop<T>,
    /** The longest a read of these loops blocks (ms): see `ownSocketTimeout` (driverShared.ts). */
    private readonly longestBlockMs: number,
    /** On a cluster: reads that block long are watched against this connection's view of the slots (nodeWatch.ts). */
    private readonly control?: WatchControl,
  ) {
    this.#migrations = new MigrationWatch(logger);
  }

  /** The group a stream key is read in. */
  groupOf(key: string): number {
    return this.driver.isCluster ? slotOf(key) : 0;
  }

  /** Makes sure the group of `key` has a loop (opening its connection), and wakes it to read the new stream. */
  async add(key: string): Promise<void> {
    const group = this.groupOf(key);
    const existing = this.#loops.get(group);
    if (existing) return existing.interrupt();
    let opening = this.#opening.get(group);
    if (!opening) {
      opening = this.#open(group).finally(() => this.#opening.delete(group));
      this.#opening.set(group, opening);
    }
    await opening;
  }

  async #open(group: number): Promise<void> {
    let conn: OwnedConnection;
    try {
      conn = await this.driver.openOwned(this.connectionName, this.logger, this.longestBlockMs, this.#silent.get(group));
    } catch (err) {
      throw toPulseError(err, 'open a read connection');
    }
    if (this.#stopped) {
      conn.close();
      return;
    }
    this.#silent.delete(group);
    const loop = this.make(group, conn);
    this.#loops.set(group, loop);
    if (this.#started) loop.start();
  }

  /** Wakes the loop of `key`'s group; stops it when `empty` says the group has no stream left. */
  async remove(key: string, empty: (group: number) => boolean): Promise<void> {
    const group = this.groupOf(key);
    const loop = this.#loops.get(group);
    if (!loop) {
      // Retired to read elsewhere (see `#watch`): nothing left to read there, nothing to open.
      if (empty(group)) {
        this.#unopened.delete(group);
        this.#silent.delete(group);
      }
      return;
    }
    if (empty(group) && this.#loops.size > 1) {
      this.#loops.delete(group);
      this.#retiredReconnects += loop.reconnects();
      await loop.stop();
      return;
    }
    await loop.interrupt();
  }

  /**
   * Whether the slot of `group` migrates (see `migrates`): its idle reads
   * then block `blockMs`, not long (migrationWatch.ts).
   */
  migrating(group: number): boolean {
    return this.driver.isCluster && this.#migrations.migrating(group);
  }

  /** Redis refused a read of `key` as its slot migrates: its reads block `blockMs` until the migration ends. */
  migrates(key: string): void {
    if (this.driver.isCluster && this.control) this.#migrations.migrates(key);
  }

  /** How many times the read connections connected again after a drop, in all (never decreases). */
  reconnects(): number {
    let n = this.#retiredReconnects;
    for (const l of this.#loops.values()) n += l.reconnects();
    return n;
  }

  /** Starts every loop, now and when added later. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const l of this.#loops.values()) l.start();
    if (this.driver.isCluster && this.control)
      this.#watch(this.control).catch((err: unknown) =>
        this.logger.warn({ err: errorText(err) }, 'the watch of blocked reads stopped'),
      );
  }

  /**
   * Every NODE_WATCH_MS, a loop whose read blocks on a node that no longer
   * serves its slot (a failover away from a silent master) starts anew on a
   * new connection: the old one is closed, ending the read that Redis
   * cannot end. Counted as a reconnect: the sink resyncs, and sweeps for
   * events the old read may have taken unseen. Slots found migrating are
   * watched here too, until their migration ends (migrationWatch.ts).
   */
  async #watch(control: WatchControl): Promise<void> {
    const signal = this.#watching.signal;
    while (!signal.aborted) {
      await sleep(NODE_WATCH_MS, signal);
      // All loops at once: a failover moves the slots of many (a sink over 1000 streams has a loop per slot).
      await Promise.all(
        [...this.#loops].map(async ([group, loop]) => {
          const node = await blockedElsewhere(loop, control).catch(() => undefined);
          if (node === undefined || signal.aborted || this.#loops.get(group) !== loop || this.#opening.has(group)) return;
          this.logger.warn(
            { node },
            'a read blocked on a node that no longer serves its streams (failed over): reading again on a new connection',
          );
          this.#loops.delete(group);
          this.#retiredReconnects += loop.reconnects() + 1;
          this.#unopened.add(group);
          this.#silent.set(group, node);
          const retiring = loop.stop();
          this.#retiring.add(retiring);
          await retiring.finally(() => this.#retiring.delete(retiring));
        }),
      );
      await this.#migrations.poll(
        (key) => control.ownerOf(key),
        (node, args, key) => control.sendToNode(node, args, key),
      );
      await Promise.all(
        [...this.#unopened].map(async (group) => {
          if (signal.aborted || this.#loops.has(group)) {
            this.#unopened.delete(group);
            this.#silent.delete(group);
            return;
          }
          // Being opened by an add(): looked at again next time (that opening may fail).
          if (this.#opening.has(group)) return;
          const opening = this.#open(group).finally(() => this.#opening.delete(group));
          this.#opening.set(group, opening);
          await opening.then(
            () => this.#unopened.delete(group),
            (err: unknown) => this.logger.warn({ err: errorText(err) }, 'could not open a read connection: trying again'),
          );
        }),
      );
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watching.abort();
    await Promise.allSettled([...this.#opening.values()]);
    await Promise.all([...this.#loops.values()].map((l) => l.stop()));
    await Promise.allSettled([...this.#retiring]);
  }
}

/**
 * Fewest entries a read asks of each stream: every read also carries the trim
 * check of every stream it reads, so with many streams small reads cost more
 * in checks than they bring (a sink over 1000 streams read 4x slower at
 * COUNT 1 than at 100).
 */
export const MIN_COUNT_PER_STREAM = 100;

/**
 * The COUNT of a read of `streams` streams. XREADGROUP applies it to each
 * stream, so `maxPolled` on each lets one read bring `streams` times
 * `maxPolled` entries: far past the buffer's hard bound (`bufferSize +
 * maxPolled`, which reclaim relies on), and with the buffer that overfull the
 * loop waits for it to drain before its next read, so reading and handling
 * stop overlapping (one sink over 6 streams ran at 0.67-0.84 x six raw loops,
 * issue 19; a reader's XREAD is the same). So `maxPolled` is split among the streams that came back full
 * last time (`busy`: more to read there), or among all of them when that is
 * not known (a first read, or after a blocking one): a single busy stream
 * among many still gets all of it. Never below `least` (default
 * {@link MIN_COUNT_PER_STREAM}: a reader buffers what it reads) nor above
 * `maxPolled`. A sink reads at least 1 per stream instead, so that a read
 * stays within `maxPolled` up to that many streams: what passes its hard
 * bound is given back, and a read of 100 streams at 100 each (10,000 events
 * against a bound of 2,000) gave most of it back, more than it remembers for
 * taking back, so the rest waited a grace period for a claim (a sink over 100
 * streams with a backlog stalled for 20 s).
 */
export function countPerStream(
  maxPolled: number,
  streams: number,
  busy: number | undefined,
  least: number = MIN_COUNT_PER_STREAM,
): number {
  const among = Math.max(1, Math.min(streams, busy ?? streams));
  return Math.min(maxPolled, Math.max(least, Math.floor(maxPolled / among)));
}

/**
 * How long a blocking read of an idle hash slot waits on a cluster. There
 * each slot is read on its own (Redis refuses one read across slots), and a
 * read that times out is a command: one per slot every `blockMs` made an idle
 * sink over 1000 streams cost 200 commands/s (issue 20). Events still end the
 * read at once, and CLIENT UNBLOCK ends it when the sink's streams in that
 * slot change (`ReadLoop.interrupt`) or a buffer fills (`untilFull`). Only
 * while every buffer is at most half full: a sink whose handlers lag reads
 * with `blockMs` blocks, so that a buffer hovering near full does not end
 * long reads again and again. On one node one read covers every stream and
 * blocks `blockMs`.
 */
export const IDLE_SLOT_BLOCK_MS = 30 * 60_000;

/**
 * Whether a read of an idle slot may block {@link IDLE_SLOT_BLOCK_MS}:
 * while every subscription's buffer is at most half full.
 */
export function mayBlockLong(fanout: Pick<Fanout<unknown>, 'room'> | undefined, bufferSize: number): boolean {
  return fanout !== undefined && fanout.room(bufferSize) * 2 >= bufferSize;
}
