/**
 * On a cluster, a sink's read of an idle slot blocks long
 * (`IDLE_SLOT_BLOCK_MS` in loops.ts), and so may its connection's socket.
 * When the slot's master goes silent (frozen, partitioned: no reset) and a
 * replica takes over, Redis cannot end that read and nothing else did: the
 * sink read nothing added on the new master for 30 minutes, without a word
 * (outside review W). So while a read blocks, the node it blocks on is
 * compared with the slot's master as the sink's control connection sees it.
 */
import type { NodeRouting } from './clusterLinks.js';
import type { Connection } from './connection.js';

/** How often the node of each blocked read is looked at (a comparison of two slot tables: no command). */
export const NODE_WATCH_MS = 1000;

/** How long the command confirming a slot's new master may take (a silent node never answers). */
const CONFIRM_MS = 5000;

/** What the watch needs of a read loop. */
export interface Watched {
  blockedOn(): { readonly node: string; readonly key: string } | undefined;
}

/**
 * What the watch needs of the control connection: its view of the slots, a
 * command routed by key, and one sent to a node (which slots migrate there:
 * migrationWatch.ts).
 */
export type WatchControl = Pick<Connection, 'send'> &
  Pick<NodeRouting, 'sendToNode'> & {
    ownerOf(key: string): Promise<string | undefined>;
  };

/**
 * The node `loop`'s blocked read waits on, when that node no longer serves
 * its slot: the control connection sees another master, and a command for the
 * key it sends there is answered (a redirection first teaches its client
 * the master: the answer is current evidence, not a stale table). Unknown
 * (no answer in time, no table yet): undefined, looked at again next time.
 */
export async function blockedElsewhere(loop: Watched, control: WatchControl): Promise<string | undefined> {
  const at = loop.blockedOn();
  if (!at) return undefined;
  const owner = await control.ownerOf(at.key).catch(() => undefined);
  if (owner === undefined || owner === at.node) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const answered = await Promise.race([
    control.send(['EXISTS', at.key], at.key).then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), CONFIRM_MS).unref();
    }),
  ]);
  clearTimeout(timer);
  if (!answered) return undefined;
  const now = await control.ownerOf(at.key).catch(() => undefined);
  // Still the same read on the same node (it may have ended meanwhile).
  return now !== undefined && now !== at.node && loop.blockedOn()?.node === at.node ? at.node : undefined;
}
