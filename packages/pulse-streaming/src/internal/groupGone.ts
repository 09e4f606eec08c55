/**
 * Events this instance let go of (a nack, the dead letter of an event that
 * does not decode) whose consumer group was gone (NOGROUP): which of them
 * Redis lost, which went with an expired key another instance reports, and
 * which the read path has yet to find lost (see `awaitRedisLoss`).
 */
import type { Connection } from './driver.js';
import { compareIds } from './ids.js';
import { streamKey } from './keys.js';

/** What accounting for events whose group was gone needs of the holds. */
export interface GroupGoneHost {
  readonly control: Connection;
  /** Counts those of `ids` Redis lost (see `countVanished`), a missing stream's check run first. */
  lostVanished(name: string, ids: readonly string[], how: string): Promise<void>;
  /** Whether event `id` of stream `name` may be one Redis lost while this instance held it (see sinkRollback.ts). */
  rolledBack(name: string, id: string): boolean;
  /** The last entry of the estimate this instance left to the lease holder when the key of stream `name` went. */
  left(name: string): string | undefined;
  /** Keeps events `ids` of stream `name` until a loss the read path finds covers them (see `awaitRedisLoss`). */
  awaitRedisLoss(name: string, ids: readonly string[], how: string): void;
  maybeLost(name: string, why: string): void;
}

/**
 * Events `ids` of stream `name` this instance let go of (`how`) and whose
 * group was gone (NOGROUP): those Redis lost are counted (see
 * `countVanished`). One in the estimate this instance left to the lease
 * holder when the key went, and no longer in the stream, may or may not be
 * in the holder's report (its last check may be older): it is said to be
 * maybe lost rather than counted twice or not at all (outside review X). One
 * still in the stream comes again from a group made anew. The others, gone
 * and not known lost yet, are counted when the read path finds the loss
 * that took them (outside review NR: a nack's NOGROUP before the read path
 * found Redis restarted empty left them counted nowhere).
 */
export async function groupGone(host: GroupGoneHost, name: string, ids: readonly string[], how: string): Promise<void> {
  await host.lostVanished(name, ids, how);
  const key = streamKey(name);
  const left = host.left(name);
  let unknown = 0;
  const unsure: string[] = [];
  for (const id of ids) {
    if (host.rolledBack(name, id)) continue;
    if (((await host.control.send(['XRANGE', key, id, id], key)) as unknown[]).length > 0) continue;
    if (left !== undefined && compareIds(id, left) <= 0) unknown++;
    else unsure.push(id);
  }
  if (unknown > 0)
    host.maybeLost(
      name,
      `${unknown} event(s) ${how}, gone with their stream (expired or deleted) after another instance's last check, whose report may not count them`,
    );
  if (unsure.length > 0) host.awaitRedisLoss(name, unsure, how);
}
