/**
 * A sink's reads of a hash slot while it migrates (resharding: MIGRATING on
 * its master, IMPORTING on the target). Keys already moved are served by the
 * target, reached by following ASK; Redis 7 ends a read blocked on a key that
 * MIGRATE deleted (UNBLOCKED), and the sink's next read, a checked one (a
 * MULTI of the trim check and XREADGROUP), is refused as long as the
 * migration stays open (`SinkReads` then reads without the check, outside
 * review AL). Its blocking reads follow ASK too, but must not block long
 * (`IDLE_SLOT_BLOCK_MS` in loops.ts) on the importing node: CLIENT UNBLOCK,
 * sent with the ID of the connection to the slot's master, could not end
 * them (a stream added in that slot, a buffer filling up) for 30 minutes. So
 * a slot whose reads were refused so is watched, with `CLUSTER NODES` on its
 * master (the only place that shows it) every `MIGRATION_WATCH_MS`, and read
 * with `blockMs` blocks until its migration ends. Nothing is asked while no
 * slot migrates.
 */
import type { Logger } from '../logger.js';
import { monotonicNow } from './clock.js';
import type { Arg } from './command.js';
import { errorText, isRetryable } from './redisErrors.js';
import { slotOf } from './slot.js';

/**
 * How often, while a slot migrates, its master is asked whether it still
 * does: reads there go back to blocking long at most this long after it ended.
 */
export const MIGRATION_WATCH_MS = 5000;

/** How long, after `CLUSTER NODES` was refused (an ACL), no node is asked again. */
const REFUSED_RECHECK_MS = 10 * 60_000;

/**
 * The slots `CLUSTER NODES` (the reply of the node asked) says that node
 * migrates away: `[<slot>->-<target id>]` on its own (`myself`) line, the only
 * line that shows them.
 */
export function migratingSlots(reply: unknown): Set<number> {
  const text = Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
  const slots = new Set<number>();
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    if (!(fields[2] ?? '').split(',').includes('myself')) continue;
    for (const f of fields.slice(8)) {
      const m = /^\[(\d+)->-/.exec(f);
      if (m) slots.add(Number(m[1]));
    }
  }
  return slots;
}

/** Sends a command without keys to the node at `address` (`key`: a key it serves, to learn it). */
export type SendToNode = (address: string, args: readonly Arg[], key?: string) => Promise<unknown>;

/**
 * The slots whose checked reads Redis refused as migrating (see
 * `SinkReads`), watched until their migration ends: their reads block
 * `blockMs` meanwhile. A long read there would follow ASK to the importing
 * node, where CLIENT UNBLOCK, sent with the ID of the connection to the
 * slot's master, cannot end it (a stream added in that slot, a buffer
 * filling up). Nothing is asked of any node while no slot migrates.
 */
export class MigrationWatch {
  /** Migrating slots, with a key of each (its node is the slot's master as the client sees it). */
  readonly #slots = new Map<number, string>();
  #lastPoll = Number.NEGATIVE_INFINITY;
  #refusedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly logger: Logger) {}

  /** Whether `slot` was found migrating (its reads then block `blockMs`, not long). */
  migrating(slot: number): boolean {
    return this.#slots.has(slot);
  }

  /** Redis refused a read of `key` as its slot migrates: watched until the migration ends. */
  migrates(key: string): void {
    // Not when the migrations cannot be watched (an ACL refuses CLUSTER NODES): nothing would end it.
    if (monotonicNow() - this.#refusedAt < REFUSED_RECHECK_MS) return;
    const slot = slotOf(key);
    if (!this.#slots.has(slot)) this.#slots.set(slot, key);
  }

  /**
   * At most every {@link MIGRATION_WATCH_MS}, while some slot migrates: asks
   * the master of each (as `ownerOf` sees it) which slots it migrates away,
   * and forgets those whose migration ended (their next idle read blocks
   * long again). A node that does not answer changes nothing: asked again
   * next period.
   */
  async poll(ownerOf: (key: string) => Promise<string | undefined>, send: SendToNode): Promise<void> {
    const now = monotonicNow();
    if (this.#slots.size === 0 || now - this.#lastPoll < MIGRATION_WATCH_MS) return;
    this.#lastPoll = now;
    const nodes = new Map<string, Array<[number, string]>>();
    for (const [slot, key] of this.#slots) {
      const node = await ownerOf(key).catch(() => undefined);
      if (node === undefined) continue;
      const slots = nodes.get(node);
      if (slots) slots.push([slot, key]);
      else nodes.set(node, [[slot, key]]);
    }
    await Promise.all(
      [...nodes].map(async ([node, slots]) => {
        let reply: unknown;
        try {
          reply = await send(node, ['CLUSTER', 'NODES'], slots[0]?.[1]);
        } catch (err) {
          if (isRetryable(err)) {
            this.logger.debug({ node, err: errorText(err) }, 'could not ask a node which slots migrate');
            return;
          }
          // Refused (an ACL): nothing would say when the migration ends, so reads block long again.
          this.#refusedAt = monotonicNow();
          this.#slots.clear();
          this.logger.warn(
            { node, err: errorText(err), retryInMs: REFUSED_RECHECK_MS },
            'CLUSTER NODES refused: the end of a slot migration cannot be seen, so reads there block long again (grant +cluster|nodes)',
          );
          return;
        }
        const migrating = migratingSlots(reply);
        for (const [slot] of slots) {
          if (migrating.has(slot) || !this.#slots.has(slot)) continue;
          this.#slots.delete(slot);
          this.logger.info({ slot, node }, 'hash slot no longer migrates: its idle reads block long again');
        }
      }),
    );
  }
}
