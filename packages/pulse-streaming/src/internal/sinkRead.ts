import type { SinkEvent } from '../event.js';
import type { Outcome } from './batcher.js';
import { monotonicNow } from './clock.js';
import type { Arg, Driver, OwnedConnection } from './driver.js';
import { readAfterCheck, wantsRecheck } from './expiryLoss.js';
import type { Fanout } from './fanout.js';
import { compareIds } from './ids.js';
import { newestReadOrLetGo } from './letGo.js';
import { IDLE_SLOT_BLOCK_MS, mayBlockLong, ReadLoops } from './loops.js';
import { MigratingSlots, readOneByOne, refusedAsMigrating } from './migratingRead.js';
import type { ReadAhead } from './readAhead.js';
import { type LoopRead, ReadLoop } from './readLoop.js';
import { ReadRotation, readSize, rotationSize } from './readRotation.js';
import { takeRead } from './readTake.js';
import { errorText, isReplyError, isRetryable, toPulseError } from './redisErrors.js';
import { str, streamEntries } from './replies.js';
import type { Deliver, SinkReadResult, SinkSettings, SinkStream } from './sinkState.js';
import { applyTrimCheck, type TrimCheckHost, trimCheckCommand } from './sinkTrimCheck.js';
import { nodeChangedBy, SlotOwners } from './slotOwners.js';

/** What the read path needs from its sink. */
export interface ReadPathHost extends TrimCheckHost {
  readonly settings: SinkSettings;
  /** The sink reads a Redis Cluster: one read per hash slot, idle ones blocking long. */
  readonly cluster: boolean;
  /** The streams the sink reads, by key. */
  readonly streams: ReadonlyMap<string, SinkStream>;
  /** The sink's read loops: which one reads a key, and how often their connections came back. */
  loops(): Pick<ReadLoops<unknown>, 'groupOf' | 'reconnects'> & Partial<Pick<ReadLoops<unknown>, 'migrating' | 'migrates'>>;
  readonly deliver: Deliver;
}

export class SinkReads {
  /** Groups whose last read found nothing: the next one blocks until something new arrives. */
  readonly #idle = new Set<number>();
  /**
   * Per group, the streams whose last read came back full (more to read):
   * the next read splits `maxPolled` among them (see `countPerStream` in loops.ts).
   */
  readonly #busy = new Map<number, number>();
  /** Reconnects of the sink's connections as of the last trim check. */
  #reconnects = 0;
  /**
   * Reads failed as the node of a slot changed without a reconnect (see `nodeChangedBy`), and replies
   * from another master than the last one there (`#owners`): counted as reconnects.
   */
  #nodeChanges = 0;
  /** The subscriptions the loops feed (set by `newLoops`): how full they are decides how long reads block. */
  #fanout: Fanout<SinkEvent> | undefined;
  /** Which streams a checked read takes when there are more than one read serves well (readRotation.ts). */
  readonly #rotation = new ReadRotation<SinkStream>();
  /** Slots whose checked reads Redis refuses as they migrate: said once per episode. */
  readonly #migrating: MigratingSlots;
  /** The master of each slot at its last reply: one that changed unsaid is a node change (slotOwners.ts). */
  readonly #owners: SlotOwners;

  constructor(private readonly host: ReadPathHost) {
    this.#migrating = new MigratingSlots(host.logger, (key) => host.loops().migrates?.(key));
    this.#owners = new SlotOwners((slot, owner) => this.#migrating.movedTo(slot, owner));
  }

  /**
   * A reply for `key` came on `conn`: a master other than at the last reply there is a node
   * change, noted at once, before `onReply` moves `lastRead` on: noted at the next read, a first
   * read after a failover that brought new events hid the rollback's range (`#noteReconnect`).
   */
  async #answered(conn: OwnedConnection, key: string | undefined): Promise<void> {
    if (!this.host.cluster || key === undefined || !(await this.#owners.moved(conn, key))) return;
    this.#nodeChanges++;
    this.#noteReconnect();
  }

  /**
   * The sink's read loops (one per hash slot group on a cluster), sharing the
   * read-ahead budget `budget`, each reading its group's streams here.
   */
  newLoops(driver: Driver, fanout: Fanout<SinkEvent>, budget: ReadAhead): ReadLoops<SinkEvent> {
    const { name, control, logger } = this.host;
    this.#fanout = fanout;
    return new ReadLoops<SinkEvent>(
      driver,
      `pulse:sink:${name}:read`,
      logger,
      (group, conn) =>
        new ReadLoop<SinkEvent>({
          conn,
          control,
          fanout,
          logger,
          nextRead: (ahead) => this.nextRead(group, ahead),
          onReply: (reply) => this.onReply(group, reply),
          onError: (err) => this.onReadError(err),
          readAhead: budget,
          pauseAfterFullMs: this.host.settings.blockMs,
        }),
      // An idle slot's read on a cluster blocks longer (see `IDLE_SLOT_BLOCK_MS`).
      this.host.cluster ? Math.max(IDLE_SLOT_BLOCK_MS, this.host.settings.blockMs) : this.host.settings.blockMs,
      control,
    );
  }

  /** The next read of `group` may have something to read at once: poll with a checked read. */
  wake(group: number): void {
    this.#idle.delete(group);
  }

  /**
   * How a sink reads, so that entries trimmed before the group read them are
   * counted (XREADGROUP jumps over them without a word; see `checkTrimmed`):
   * - while there is more to read: one MULTI, the check, then a non-blocking
   *   XREADGROUP;
   * - once a read came back short: a blocking XREADGROUP alone, one round
   *   trip from add to handler, as fast as a hand-written loop. What such a
   *   read may have jumped is counted by a later check, which verifies it
   *   from where the group was before it: the next MULTI read's, the
   *   keep-alive's (every grace period / 4, at most 5 s), or `close()`'s.
   *
   * While the last read came back full (a backlog), the next MULTI read may
   * go out before this one's reply (`ahead`: the room it may take; see
   * `ReadAhead`): each carries its own trim check, which Redis runs just
   * before its XREADGROUP, after the reads sent before it.
   */
  nextRead(group: number, ahead?: number): LoopRead | undefined {
    // Before anything is planned: streams a reconnect made untrusted must get a checked read first.
    this.#noteReconnect();
    const blocking = this.#idle.has(group);
    const pipelined = !blocking && this.#busy.has(group);
    if (ahead !== undefined && !pipelined) return undefined;
    const all = this.#groupStreams(group);
    if (all.length === 0) return undefined;
    // Not ahead of a resync (after a reconnect): a check built before the
    // read out is applied would resync too, and not count what is trimmed
    // between the two (the first one's reply makes the streams trusted).
    if (ahead !== undefined && (this.#reconnectsNow() !== this.#reconnects || all.some((s) => !s.trusted))) return undefined;
    const { maxPolled, bufferSize, blockMs } = this.host.settings;
    // A checked read takes a share of the streams in turn and probes the other drained ones
    // (readRotation.ts); a blocking one waits on all.
    // Untrusted streams (a resync due) are never probed: an unchecked read would jump what was
    // trimmed while the connection was away, and the resync after it would count nothing
    // (outside review AJ).
    const sorted = this.#rotation.sort(all, (s) => !s.trusted);
    const size = blocking ? all.length : Math.min(all.length, rotationSize(maxPolled));
    const room = Math.max(maxPolled, this.#fanout?.room(bufferSize + maxPolled) ?? 0);
    const busy = blocking ? undefined : this.#busy.get(group);
    const sized = readSize({ sorted, size, room, maxPolled, busy, blocking, ahead });
    if (sized === undefined) return undefined;
    const { count, probeMost } = sized;
    // Planned only now, for a read that is sent: a refused read ahead moved the rotation on, and
    // some busy streams went unread while the others drained (outside review AG).
    const plan = blocking ? { read: all, probe: [] } : this.#rotation.plan(group, sorted, size, probeMost);
    const streams = plan.read;
    const probe = plan.probe;
    const most = count * streams.length + probe.length;
    const keys = streams.map((s) => s.stream.key);
    const read = this.#xreadgroup(count, keys, blocking ? blockMs : undefined);
    // Where BLOCK's value sits (see #xreadgroup), by position: a sink or consumer named BLOCK
    // would be found first by a search.
    const blockAt = this.host.settings.noAck ? 8 : 7;
    if (blocking) {
      // Not while the slot migrates: adds of its moved keys go to another node (ASK) and would not end it.
      const long =
        this.host.cluster && mayBlockLong(this.#fanout, this.host.settings.bufferSize) && !this.host.loops().migrating?.(group);
      const send = async (conn: OwnedConnection, interrupted?: () => boolean) => {
        try {
          if (this.host.cluster && (await conn.readyUnblock(keys[0] as string))) {
            // The streams changed while the connection got ready: this read is stale, read again.
            if (interrupted?.()) return { streams, blocking, count, got: { ok: true, value: null }, checked: undefined };
            if (long) read[blockAt] = Math.max(blockMs, IDLE_SLOT_BLOCK_MS);
          }
          const sentAt = monotonicNow();
          const got: Outcome = { ok: true, value: await conn.send(read, keys[0]) };
          // Before `onReply` moves `lastRead` on: a resync looks for what was read before the change.
          await this.#answered(conn, keys[0]);
          return { streams, blocking, count, got, checked: undefined, sentAt };
        } catch (err) {
          // The next read is a checked one: its check says which stream lost its key or group.
          this.#idle.delete(group);
          throw err;
        }
      };
      // Never pipelined: a read behind it would wait out its block, and its
      // trim check would run with what was to verify before this read. On a
      // cluster, ended when a buffer fills: each slot's read would otherwise
      // bring up to `count` more on top of a full buffer (`pauseAfterFullMs`).
      return { send, most, untilFull: this.host.cluster };
    }
    const check = this.#checkCommand(streams);
    const commands = [check, read];
    if (probe.length > 0)
      commands.push(
        this.#xreadgroup(
          1,
          probe.map((s) => s.stream.key),
        ),
      );
    const epoch = this.#reconnectsNow();
    const send = async (conn: OwnedConnection) => {
      const sentAt = monotonicNow();
      const checkAt = performance.now();
      const readAt = streams.map((x) => x.lastRead);
      let replies: Outcome[];
      try {
        replies = await conn.transaction(commands, keys[0]);
      } catch (err) {
        // The slot migrates: its streams are read one by one, unchecked, until it ends (migratingRead.ts).
        if (!this.host.cluster || !refusedAsMigrating(err)) throw err;
        this.#migrating.refused(keys, err);
        // A stream due for a resync (the connection came back, maybe since this read was made: the
        // refusal came on the new one) is resynced on its key alone first.
        this.#noteReconnect();
        const resync = async (s: SinkStream) => (await this.#checkOne(s, () => true, conn)) === 'ok';
        const one = await readOneByOne(conn, streams, (key) => this.#xreadgroup(count, [key]), err, resync);
        return { streams: one.read, blocking: false, unchecked: true, count, got: one.got, checked: undefined, sentAt };
      }
      // Before `passed`: a new master that is where the slot's migration went is its end, not a failover.
      await this.#answered(conn, keys[0]);
      this.#migrating.passed(keys);
      const [checked, got, probed] = replies;
      if (!checked?.ok) throw checked?.error ?? new Error('no reply to the trim check');
      return { streams, blocking, count, got, checked, sentAt, checkAt, readAt, epoch, probe, probed };
    };
    return { send, most, pipelined, blocks: false };
  }

  /** An XREADGROUP of new entries of `keys`, `count` each at most, blocking `blockMs` when given. */
  #xreadgroup(count: number, keys: readonly string[], blockMs?: number): Arg[] {
    const cmd: Arg[] = ['XREADGROUP', 'GROUP', this.host.name, this.host.consumerName, 'COUNT', count];
    if (this.host.settings.noAck) cmd.push('NOACK');
    if (blockMs !== undefined) cmd.push('BLOCK', blockMs);
    cmd.push('STREAMS', ...keys);
    for (let i = 0; i < keys.length; i++) cmd.push('>');
    return cmd;
  }

  /** The streams of `group` that reads may take now. */
  #groupStreams(group: number): SinkStream[] {
    return [...this.host.streams.values()].filter((s) => s.ready && this.host.loops().groupOf(s.stream.key) === group);
  }

  /**
   * A check made before a connection came back or the serving node changed
   * (`epoch`: `#reconnectsNow()` then) and answered after: it was made
   * trusting the group's entries-read, but may have been answered by
   * another node (a check the cluster client redirected after a clean
   * failover reaches the promoted replica, whose entries-read of the group
   * is not replicated): its counts would be false losses (150 of 150 in a
   * loaded CI run). It is applied counting and verifying nothing (what it
   * says of a missing key or group, or of a rollback, stands), and the
   * streams are marked untrusted, so the next check resyncs.
   */
  #madeBefore(epoch: number): boolean {
    if (this.#reconnectsNow() === epoch) return false;
    this.#noteReconnect();
    return true;
  }

  /** How many times the sink's connections connected again so far. */
  #reconnectsNow(): number {
    return this.host.control.reconnects() + this.host.loops().reconnects() + this.#nodeChanges;
  }

  /**
   * A connection that came back may talk to a restarted or promoted Redis:
   * its groups' entries-read counters are stale until resynced, and what
   * this instance had read is kept for the resync to look for (a rollback
   * took it: see `afterReconnect`), before a read on the new connection
   * moves `lastRead` on.
   */
  #noteReconnect(): void {
    const reconnects = this.#reconnectsNow();
    if (reconnects === this.#reconnects) return;
    this.#reconnects = reconnects;
    for (const s of this.host.streams.values()) {
      s.trusted = false;
      s.readBeforeReconnect ??= newestReadOrLetGo(s);
      s.lossCounted = false;
    }
  }

  /**
   * The trim check of these streams, verifying what blocking reads delivered since the last check;
   * `alone`: of one stream on its key alone (its slot migrates: see `checkTrimmed`).
   */
  #checkCommand(streams: readonly SinkStream[], alone = false): Arg[] {
    this.#noteReconnect();
    return trimCheckCommand(this.host.name, streams, alone);
  }

  async onReply(group: number, result: unknown): Promise<void> {
    const { streams, got, checked, blocking, unchecked, count, sentAt, checkAt, readAt, epoch, probe, probed } =
      result as SinkReadResult;
    this.#noteReconnect();
    // A read that failed (NOGROUP, WRONGTYPE on one stream) read nothing: the check says why.
    const byKey = new Map(got?.ok ? streamEntries(got.value) : []);
    let read = 0;
    let full = 0;
    for (const s of streams) {
      const n = takeRead(this.host.deliver, s, byKey.get(s.stream.key), blocking || unchecked === true, blocking, sentAt);
      read += n;
      if (n >= count) full++;
    }
    this.#rotation.settle(streams, (s) => (byKey.get(s.stream.key)?.length ?? 0) < count);
    if (probe && probe.length > 0) {
      // A probe that failed (a stream's key or group gone) found nothing: those streams get checked reads, which say why.
      const probedByKey = new Map(probed?.ok ? streamEntries(probed.value) : []);
      for (const s of probe) {
        const n = takeRead(this.host.deliver, s, probedByKey.get(s.stream.key), true, false, sentAt);
        read += n;
        if (n > 0) full++;
      }
      this.#rotation.settle(probe, (s) => probed?.ok === true && (probedByKey.get(s.stream.key)?.length ?? 0) === 0);
    }
    // Short batches drained the streams (those of this read, and those the rotation left out
    // when they last came back short): block for news instead of polling.
    const groupStreams = this.#groupStreams(group);
    // Not while a stream still waits for its resync: a blocking read is not checked either.
    if (full === 0 && this.#rotation.allDrained(groupStreams) && groupStreams.every((s) => s.trusted)) {
      this.#idle.add(group);
      this.#busy.delete(group);
    } else {
      this.#idle.delete(group);
      this.#busy.set(group, full);
    }
    if (!checked) return;
    if (!checked.ok) throw checked.error;
    // Made before the node changed: its counts may be another node's (see `#madeBefore`).
    const stale = epoch !== undefined && this.#madeBefore(epoch);
    const checks = checked.value as unknown[];
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i] as SinkStream;
      const applied = s.checkAppliedAt;
      const status = await applyTrimCheck(this.host, s, (checks[i] ?? []) as unknown[], checkAt ?? 0, readAt?.[i], stale);
      // Its read came right after it: what it delivered is pending now, not unread (unless the check was stale).
      if (s.checkAppliedAt !== applied) readAfterCheck(s, byKey.get(s.stream.key));
      if (status === 'wrongtype') return;
      if (status !== 'ok') this.#idle.delete(group);
    }
    if (got && !got.ok && read === 0 && !checks.some((r) => str((r as unknown[])[0]) !== 'ok')) throw got.error;
  }

  /**
   * Runs the trim check for what blocking reads delivered since the last one, so no loss goes unreported,
   * and for quiet streams that want one (`wantsRecheck`). `leaving` (close): also for streams read
   * since their last check, so that the group's kept position (`positionsKey`) is where its reads
   * ended: an instance started after Redis came back from its AOF counts exactly from there.
   */
  async verifyReads(streams: readonly SinkStream[], leaving = false): Promise<void> {
    const now = performance.now();
    const readSince = (s: SinkStream) => leaving && s.lastRead !== undefined && compareIds(s.lastRead, s.checked ?? '0-0') > 0;
    const pending = streams.filter((s) => s.unverified !== undefined || !s.trusted || wantsRecheck(s, now) || readSince(s));
    for (const [i, s] of pending.entries()) {
      try {
        // Only the count: a missing key or group is for the read loop to handle, not a leaving sink.
        await this.#checkOne(s, (status) => status === 'ok');
      } catch (err) {
        // With Redis unreachable every stream would fail alike: one line, and a later call checks them.
        const names = isRetryable(err) ? pending.slice(i).map((x) => x.stream.name) : [s.stream.name];
        this.host.logger.warn(
          { streams: names.slice(0, 10), streamCount: names.length, err: errorText(err) },
          'could not check the last reads for trimmed events',
        );
        if (isRetryable(err)) return;
      }
    }
  }

  /**
   * Checks one stream now, on the control connection, and acts on what it
   * finds, a missing key or group included: the ownership check and the
   * holds call it when the read loop is paused by full buffers.
   */
  async recover(s: SinkStream): Promise<void> {
    await this.#checkOne(s, () => true);
  }

  /**
   * Checks stream `s` on the control connection, or on `migrating`, the read connection of its
   * slot as it migrates, on its key alone; applies what it found when `apply(status)` says so.
   */
  async #checkOne(s: SinkStream, apply: (status: string) => boolean, migrating?: OwnedConnection): Promise<string> {
    const [at, readAt] = [performance.now(), s.lastRead];
    const cmd = this.#checkCommand([s], migrating !== undefined);
    const epoch = this.#reconnectsNow();
    const conn = migrating ?? this.host.control;
    const checks = (await conn.send(cmd, s.stream.key)) as unknown[];
    // Not for an ASK followed: the importing node serves the slot's keys without owning it yet.
    if (migrating === undefined) await this.#answered(conn, s.stream.key);
    const stale = this.#madeBefore(epoch);
    const r = (checks[0] ?? []) as unknown[];
    const status = str(r[0]);
    if (apply(status)) await applyTrimCheck(this.host, s, r, at, readAt, stale);
    return status;
  }

  async onReadError(err: unknown): Promise<'retry' | 'again' | 'stop'> {
    if (isReplyError(err, 'WRONGTYPE')) {
      this.host.fail(toPulseError(err, 'sink stopped: a stream key holds another type'));
      return 'stop';
    }
    // A blocking read found no group: the checked read that follows recreates it.
    if (isReplyError(err, 'NOGROUP')) return 'again';
    // The next check resyncs (a needless one costs nothing more): see `nodeChangedBy`.
    if (nodeChangedBy(err, refusedAsMigrating(err) || this.#migrating.endedBy(err))) this.#nodeChanges++;
    // Retrying cannot fix it (NOPERM, a syntax error...): end the subscriptions with it.
    if (!isRetryable(err)) {
      this.host.fail(toPulseError(err, 'sink stopped: Redis refused its reads for good'));
      return 'stop';
    }
    return 'retry';
  }
}
