/** What a read loop is given (see readLoop.ts): the reads it sends, and where their replies go. */
import type { Logger } from '../logger.js';
import type { NodeRouting } from './clusterLinks.js';
import type { Connection, OwnedConnection } from './driver.js';
import type { Fanout } from './fanout.js';
import type { ReadAhead } from './readAhead.js';

/** One read a loop sends. */
export interface LoopRead {
  /**
   * Sends the read on the loop's connection; resolves to what `onReply`
   * takes. `interrupted()` says whether `interrupt()` was called since: a
   * read that prepares its connection first (a cluster read learns how to
   * be unblocked) checks it before it blocks with what may be stale.
   */
  send(conn: OwnedConnection, interrupted?: () => boolean): Promise<unknown>;
  /** Most entries its reply can bring: counted against the read-ahead budget while it is out. @defaultValue 0 */
  readonly most?: number;
  /**
   * Another read may go out behind this one before its reply (it does not
   * block, and more is known to wait). A read is only ever sent behind reads
   * that all say so, and only if it says so itself.
   * @defaultValue false
   */
  readonly pipelined?: boolean;
  /**
   * It may block: `interrupt()` ends it (CLIENT UNBLOCK). A read that does
   * not block returns by itself soon enough, and is left alone.
   * @defaultValue true
   */
  readonly blocks?: boolean;
  /**
   * End it too when a subscription's buffer fills (`Fanout.onFull`): a read
   * that may block long would otherwise bring its entries on top of a full
   * buffer whenever they arrive.
   * @defaultValue false
   */
  readonly untilFull?: boolean;
}

export interface ReadLoopSpec<T> {
  readonly conn: OwnedConnection;
  /** Connection used to send CLIENT UNBLOCK (on a cluster, to the node of the blocked read: `sendToNode`). */
  readonly control: Connection & Partial<NodeRouting>;
  readonly fanout: Fanout<T>;
  readonly logger: Logger;
  /**
   * The next read on `conn`, or undefined when there is nothing to read yet.
   * With `ahead` (read-ahead: the read would go out behind reads still out),
   * only a pipelined read that brings at most `ahead` entries, else undefined.
   */
  nextRead(ahead?: number): LoopRead | undefined;
  /** Handles a read's result. */
  onReply(reply: unknown): Promise<void> | void;
  /** Handles a failure: 'retry' backs off, 'again' retries at once (the caller fixed something), 'stop' ends. */
  onError(err: unknown): Promise<'retry' | 'again' | 'stop'>;
  /** Lets pipelined reads go out ahead within this budget; without it, one read at a time. */
  readonly readAhead?: ReadAhead;
  /**
   * After a read was ended because a buffer filled (`untilFull`), how long
   * the loop waits before its next blocking read (an `interrupt()` or every
   * buffer emptying ends the wait): with a buffer hovering near full, reads
   * sent as soon as there is room would each be ended again at the next
   * fill, two commands per loop each time. @defaultValue 0
   */
  readonly pauseAfterFullMs?: number;
}
