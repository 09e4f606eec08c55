/**
 * A sink's checked reads while their hash slot migrates (resharding). A
 * checked read is one MULTI (the trim check, with its 3 keys per stream, and
 * XREADGROUP): Redis refuses it while the slot's keys are split between two
 * nodes or moved already (ASK, TRYAGAIN, EXECABORT), and no client can
 * follow ASK with a transaction whose keys the importing node does not all
 * have. Retried as is, the sink delivered nothing for as long as the
 * migration stayed open, while a reader (single-key reads, ASK followed)
 * read on (outside review AL). So the streams are read as a blocking read
 * reads them, without the check: one single-key XREADGROUP each, which the
 * client sends on with ASK. What such a read may have jumped is verified by
 * a later check (`unverified`, as for a blocking read), once the slot's keys
 * are on one node again.
 */
import type { Logger } from '../logger.js';
import type { Outcome } from './batcher.js';
import type { Arg, Connection } from './driver.js';
import { errorText, replyCode } from './redisErrors.js';
import { mapPairs } from './replies.js';
import type { SinkStream } from './sinkState.js';
import { slotOf } from './slot.js';

/** Reply codes of a transaction refused because its slot migrates. */
const MIGRATING = new Set(['ASK', 'TRYAGAIN']);

/**
 * Whether `err`, the failure of a checked read's transaction, says its slot
 * migrates: ASK or TRYAGAIN (node-redis, whose transaction goes to the
 * slot's master as is; ioredis after too many redirections), or EXECABORT
 * for such a refusal (ioredis follows ASK with the whole transaction, which
 * the importing node refuses as TRYAGAIN: its keys are not all there).
 * Nothing of a refused transaction ran.
 */
export function refusedAsMigrating(err: unknown): boolean {
  const code = replyCode(err);
  if (code !== undefined && MIGRATING.has(code)) return true;
  if (code !== 'EXECABORT') return false;
  const previous = (err as { previousErrors?: unknown }).previousErrors;
  return Array.isArray(previous) && previous.some((e) => MIGRATING.has(replyCode(e) ?? ''));
}

/**
 * Reads `streams` one XREADGROUP each (`read(key)`), routed by key so that
 * the client follows ASK, in parallel. A stream whose resync is due
 * (untrusted: its connection came back) is first resynced on its key alone
 * (`resync`, which says whether the check found it there): read unchecked
 * before, a read would jump what was trimmed while the connection was away,
 * and the resync after it would count nothing (outside review AJ); not read
 * at all, it delivered nothing until the migration ended (AO1, which can be
 * never: a reshard that failed halfway). The check finds what trimming took
 * while it was away (said, how many unknown when Redis cannot tell), and a
 * trim between it and the read is left for the check after the migration,
 * as for the streams read unchecked throughout; except where the check could
 * not verify the group's position (more than 256 unread: sinkTrimCheck.ts):
 * the stream stays due for a resync, and that check counts nothing, so such
 * a trim in the moment between the two goes unsaid. Reading it anyway is the
 * trade: not reading stalled it for the whole migration. The reply has the shape of
 * one XREADGROUP over the streams read. Throws the first failure when every
 * read failed, and `refusal` (the transaction's) when a stream could not be
 * read and none brought anything: the loop retries with backoff, as a read
 * that cannot progress must not spin.
 */
export async function readOneByOne(
  conn: Connection,
  streams: readonly SinkStream[],
  read: (key: string) => Arg[],
  refusal: unknown,
  resync: (s: SinkStream) => Promise<boolean>,
): Promise<{ read: SinkStream[]; got: Outcome }> {
  const readable: SinkStream[] = [];
  let failed: unknown;
  for (const s of streams) {
    try {
      if (s.trusted || (await resync(s))) readable.push(s);
    } catch (err) {
      failed ??= err;
    }
  }
  const replies = await Promise.allSettled(readable.map((s) => conn.send(read(s.stream.key), s.stream.key)));
  const pairs: Array<[string, unknown]> = [];
  for (const r of replies) {
    if (r.status === 'fulfilled') pairs.push(...mapPairs(r.value));
    else failed ??= r.reason;
  }
  if (pairs.length === 0 && failed !== undefined) throw failed;
  if (pairs.length === 0 && readable.length < streams.length) throw refusal;
  return { read: readable, got: { ok: true, value: pairs } };
}

/** The node an ASK in `err` (or in the errors of its aborted transaction) sends the keys to. */
function askTarget(err: unknown): string | undefined {
  const previous = (err as { previousErrors?: unknown }).previousErrors;
  for (const e of [err, ...(Array.isArray(previous) ? previous : [])]) {
    const to = /^ASK \d+ (\S+)/.exec(errorText(e))?.[1];
    if (to !== undefined) return to;
  }
  return undefined;
}

/** Says once per episode, per slot, that its checked reads are refused as it migrates, and when they pass again. */
export class MigratingSlots {
  /** Per slot refused, where its keys go (`host:port`, from an ASK) when a refusal said it. */
  readonly #refused = new Map<number, string | undefined>();

  constructor(
    private readonly logger: Logger,
    /** Told of every refusal (with a key of the slot): the slot's idle reads block `blockMs` until it ends. */
    private readonly migrates: (key: string) => void,
  ) {}

  /** A checked read of `keys` was refused with `err` as their slot migrates. */
  refused(keys: readonly string[], err: unknown): void {
    this.migrates(keys[0] ?? '');
    const slot = slotOf(keys[0] ?? '');
    if (this.#refused.get(slot) !== undefined) return;
    const known = this.#refused.has(slot);
    this.#refused.set(slot, askTarget(err));
    if (known) return;
    this.logger.warn(
      { slot, streams: keys.length, err: errorText(err) },
      'hash slot migrates: Redis refuses checked reads there, so its streams are read one by one without the trim check (verified once the migration ends)',
    );
  }

  /**
   * Whether `err` is the MOVED of a slot whose checked reads were refused as
   * it migrated, none passing since: the migration ended, and the keys
   * MIGRATE moved kept their groups' entries-read. Not a node change (as a
   * failover's MOVED is, whose node's entries-read may be behind): the
   * resync that follows one counts nothing, and what the unchecked reads of
   * the migration jumped went unsaid.
   */
  endedBy(err: unknown): boolean {
    if (this.#refused.size === 0 || replyCode(err) !== 'MOVED') return false;
    const [, slot, to] = /^MOVED (\d+) (\S+)/.exec(errorText(err)) ?? [];
    return slot !== undefined && to !== undefined && this.endsAt(Number(slot), to);
  }

  /**
   * Whether `owner`, the new master of `slot`, is where its migration moved
   * its keys: the slot's checked reads were refused, none passing since, and
   * `owner` is the node its ASK named (when one did). Another node is a
   * failover (outside review AO, defect 4): a slot long idle or paused stays
   * here until a checked read passes, and a later failover's first MOVED was
   * taken for the migration's end, its resync skipped.
   */
  endsAt(slot: number, owner: string): boolean {
    if (!this.#refused.has(slot)) return false;
    const to = this.#refused.get(slot);
    return to === undefined || to === owner;
  }

  /**
   * A reply showed `owner` as the new master of `slot`: whether that is its
   * migration's end (`endsAt`), which is then over: a later failover, its
   * slot long idle or paused meanwhile, is not taken for it.
   */
  movedTo(slot: number, owner: string): boolean {
    if (!this.endsAt(slot, owner)) return false;
    this.#ended(slot);
    return true;
  }

  /** A checked read of `keys` passed: their slot's keys are on one node again. */
  passed(keys: readonly string[]): void {
    if (this.#refused.size > 0) this.#ended(slotOf(keys[0] ?? ''));
  }

  #ended(slot: number): void {
    if (this.#refused.delete(slot)) this.logger.info({ slot }, 'hash slot no longer refuses checked reads');
  }
}
