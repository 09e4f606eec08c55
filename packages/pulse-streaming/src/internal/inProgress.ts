/**
 * `SinkEvent.inProgress()`: resets the idle time of an event a handler works
 * on, or says it is no longer this consumer's (`NotOwnedError`). Sent on the
 * user's client, as acks are.
 */
import { NotOwnedError } from '../errors.js';
import type { SinkEvent } from '../event.js';
import { checkOpen, type Driver, evalScript } from './driver.js';
import type { HeldGone } from './heldGone.js';
import { sinkKeys, streamKey } from './keys.js';
import { refusedAsMigrating } from './migratingRead.js';
import { delayAlone } from './migratingWrites.js';
import { keepOwned } from './ownership.js';
import { toPulseError } from './redisErrors.js';
import { str } from './replies.js';

/** What `keepEventOwned` needs of the sink. */
export interface InProgressHost {
  readonly name: string;
  readonly consumerName: string;
  readonly driver: Driver;
  readonly graceMs: number;
}

/** What `keepEventOwned` needs of the sink's holds. */
export interface InProgressHolds {
  readonly heldGone: HeldGone;
  /** Of `ids` (events of stream `name` pending for no one and gone from it), those Redis lost in a rollback. */
  lostByRedis(name: string, ids: readonly string[]): Promise<string[]>;
}

/** Resets `event`'s idle time, or throws `NotOwnedError` when another consumer has it or it is settled. */
export async function keepEventOwned(host: InProgressHost, holds: InProgressHolds, event: SinkEvent): Promise<void> {
  // Sent on your client: closed while it waited to reconnect (ioredis), it would never settle it.
  checkOpen(host.driver, `inProgress event ${event.id}`);
  const { name, consumerName } = host;
  let reply: unknown[];
  const keys = { stream: streamKey(event.streamName), delays: sinkKeys(event.streamName, name).delays };
  const args = [name, consumerName, event.id, host.graceMs];
  try {
    try {
      reply = (await evalScript(host.driver, keepOwned, [keys.stream, keys.delays], args)) as unknown[];
    } catch (err) {
      // Its slot migrates and the delays set is missing (nothing delayed): see migratingWrites.ts.
      if (!refusedAsMigrating(err)) throw err;
      reply = (await evalScript(host.driver, keepOwned, [keys.stream], args)) as unknown[];
      if (str(reply[0]) === 'gone') await delayAlone(host.driver, keys, host.graceMs, [event.id]);
    }
  } catch (err) {
    throw toPulseError(err, `inProgress event ${event.id}`);
  }
  // 'gone': a trimmed or deleted entry is left to the handler (kept from
  // other instances' claims for a grace period): its ack or nack decides.
  const status = str(reply[0]);
  if (status === 'gone') holds.heldGone.note(event.streamName, [event.id]);
  // Redis rolled back under the handler (the snapshot had neither the entry
  // nor its pending entry): nobody else has it, nobody will redeliver it;
  // the handler goes on with it. Not known yet: the check that finds a
  // rollback runs first (it may not have run since the reconnect).
  if (status === 'notpending') {
    let lost: string[];
    try {
      lost = await holds.lostByRedis(event.streamName, [event.id]);
    } catch (err) {
      throw toPulseError(err, `inProgress event ${event.id}`);
    }
    if (lost.length > 0) return;
    throw new NotOwnedError(`event ${event.id} is no longer pending for sink ${name}: acked, dead-lettered or reported lost`);
  }
  if (status === 'other') {
    throw new NotOwnedError(
      `event ${event.id} now belongs to consumer ${str(reply[1])}: it was redelivered after the grace period`,
    );
  }
}
