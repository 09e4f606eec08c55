/**
 * Ending a blocked read from outside (CLIENT UNBLOCK), for the read loop's
 * `interrupt()` (the set of streams changed) and for a buffer that filled
 * while a read was out.
 */
import type { Logger } from '../logger.js';
import { sleep } from './backoff.js';
import { monotonicNow } from './clock.js';
import type { NodeRouting } from './clusterLinks.js';
import type { Arg, Connection, OwnedConnection } from './driver.js';
import { errorText, isRetryable } from './redisErrors.js';

/** Longest CLIENT UNBLOCK is repeated for one read. */
const UNBLOCK_FOR_MS = 10_000;

/** What a wait resolves to when the read settled or the loop stopped first. */
const ENDED = Symbol('ended');

/**
 * Ends the blocked read `pending` sent on `conn` (CLIENT UNBLOCK: it returns
 * as if timed out). The command travels on `control`, another connection,
 * and can overtake the read, or reach it before it was sent (a cluster read
 * learns its node first): it is repeated while `stillOut()` says the read is
 * the one in flight, for at most {@link UNBLOCK_FOR_MS}. When the target is
 * not known (a read that could not be made unblockable, or whose slot moved:
 * Redis ends that one itself) the read is left to return by itself.
 */
export async function unblockRead(
  conn: OwnedConnection,
  control: Connection & Partial<NodeRouting>,
  logger: Logger,
  signal: AbortSignal,
  pending: Promise<unknown>,
  stillOut: () => boolean,
): Promise<void> {
  const until = monotonicNow() + UNBLOCK_FOR_MS;
  // Every wait below also ends when the read settles or the loop stops: with
  // Redis frozen (SIGSTOP) neither the target nor CLIENT UNBLOCK ever
  // answers, and `removeStream()` (which waits for this) must still settle
  // once `close()` stopped the loop.
  let onAbort: (() => void) | undefined;
  const ended = new Promise<typeof ENDED>((resolve) => {
    onAbort = () => resolve(ENDED);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) resolve(ENDED);
    pending.then(() => resolve(ENDED), noop);
  });
  const orEnded = <V>(p: Promise<V>): Promise<V | typeof ENDED> => {
    // Its rejection after `ended` won is nobody's: not left unhandled.
    p.catch(noop);
    return Promise.race([p, ended]);
  };
  try {
    let failed: unknown;
    for (let i = 0; stillOut() && !signal.aborted; i++) {
      if (monotonicNow() > until) {
        const why = failed === undefined ? 'it did not end' : `CLIENT UNBLOCK failed: ${errorText(failed)}`;
        logger.warn({ triedForMs: UNBLOCK_FOR_MS }, `could not end a blocked read (${why}): it ends with its block`);
        return;
      }
      const target = await orEnded(conn.unblockTarget());
      if (target === undefined || target === ENDED) return;
      const { node, id, key } = target;
      const send = async (args: readonly Arg[]): Promise<unknown> =>
        node === undefined ? control.send(args) : control.sendToNode ? control.sendToNode(node, args, key) : undefined;
      try {
        if ((await orEnded(send(['CLIENT', 'UNBLOCK', id]))) === ENDED) return;
      } catch (err) {
        // A node the control connection learns of later, or a connection that
        // comes back, is worth another try; a refusal (NOPERM) is not.
        if (!isRetryable(err)) {
          // From now on no read of this client blocks long for a while (`UnblockPermission`): they block `blockMs`.
          conn.unblockRefused();
          logger.warn({ err: errorText(err) }, 'CLIENT UNBLOCK refused: the blocked read ends with its block or an event');
          return;
        }
        failed = err;
      }
      await Promise.race([ended, sleep(i < 50 ? 20 : 500)]);
    }
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function noop(): void {}
