/**
 * Which node answered a sink's reads and checks of each hash slot. A trim
 * check trusts its group's entries-read on the node that answers it, and a
 * promoted replica's is not that of its old master (Redis 7.0 does not
 * replicate it): trusted, it counted handled events as trimmed. A failover
 * usually says itself (a read blocked on the old master ends UNBLOCKED, a
 * connection drops: `SinkReads.onReadError`), but a clean one (CLUSTER
 * FAILOVER, ~100 ms) while a sink's read loop was paused said nothing: no
 * read was out, and both cluster clients follow the next read's MOVED
 * without a word (outside review AO, defect 4). So after each reply, the
 * slot's master as the connection that sent it sees it now (its client
 * learned the new one from the MOVED it followed; a look at its slot table,
 * no command) is compared with the node of the last reply there: a change
 * counts as a node change, so checks made before it count nothing and the
 * next one resyncs. A migration's end moves a slot too, to the node that
 * imported its keys (with their groups' entries-read): not a node change
 * (`MigratingSlots.movedTo`).
 */
import type { OwnedConnection } from './connection.js';
import { isServerReply, keyDeleted, NODE_CHANGED, replyCode } from './redisErrors.js';
import { slotOf } from './slot.js';

export class SlotOwners {
  /** Per slot, the master (`host:port`) that answered the last reply looked at. */
  readonly #owners = new Map<number, string>();

  constructor(
    /**
     * Whether `owner` is where the migration of `slot` moved its keys: its end (then over), not a
     * failover (`MigratingSlots.movedTo`).
     */
    private readonly migrationEnd: (slot: number, owner: string) => boolean,
  ) {}

  /**
   * A reply for `key` came on `conn`: whether its slot's master is another
   * node than at the last reply (a failover the client followed silently).
   * Unknown (no slot table yet, the first reply of the slot): no change.
   */
  async moved(conn: Pick<OwnedConnection, 'ownerOf'>, key: string): Promise<boolean> {
    const owner = await conn.ownerOf(key).catch(() => undefined);
    if (owner === undefined) return false;
    const slot = slotOf(key);
    const last = this.#owners.get(slot);
    if (last === owner) return false;
    this.#owners.set(slot, owner);
    return last !== undefined && !this.migrationEnd(slot, owner);
  }
}

/**
 * Whether a failed read says the node of its slot changed (counted as a node
 * change: the next check resyncs). A read that failed without a reply (its
 * connection dropped) may be answered by another server next: node-redis'
 * cluster reconnects a node's connection without a 'ready' of the cluster
 * client, and the promoted replica's entries-read, trusted, counted a false
 * trim (outside review W). Not a key deleted under a blocked read, nor a
 * migration's refusals and end (`migration`): the keys MIGRATE moved keep
 * their groups.
 */
export function nodeChangedBy(err: unknown, migration: boolean): boolean {
  if (migration) return false;
  return (NODE_CHANGED.has(replyCode(err) ?? '') && !keyDeleted(err)) || !isServerReply(err);
}
