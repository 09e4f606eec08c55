/**
 * A sink's group missing on a stream (NOGROUP): recreated at 0 when the key
 * is there (nothing lost, duplicates possible), reported gone when it is not.
 */
import type { Logger } from '../logger.js';
import { evalScript, type OwnedConnection } from './driver.js';
import { recreateGroup } from './scripts.js';
import { forgetUnsure, goneWithKey } from './sinkRollback.js';
import type { SinkStream } from './sinkState.js';
import { slotOf } from './slot.js';
import { streamNow } from './streamNow.js';

/** What recreating a group needs of the sink's read path. */
export interface RecreateHost {
  readonly name: string;
  readonly consumerName: string;
  readonly control: OwnedConnection;
  readonly logger: Logger;
  /** The stream's key is gone, or was created anew: reports what went with the old one. */
  streamGone(s: SinkStream, before: string | undefined): Promise<void>;
  /** Reports that events of stream `name` may be lost, how many unknown. */
  maybeLost(name: string, why: string, ids?: readonly string[]): void;
}

/** Recreations under way, per stream: a NOGROUP met while one runs joins it. */
const recreating = new WeakMap<SinkStream, Promise<void>>();

/**
 * NOGROUP: recreate the group at 0 if the stream key exists (nothing lost),
 * else wait for the key. Once at a time per stream: the read loop's check
 * and a recovery's may meet the same NOGROUP, and two at once each reported
 * the old key's events lost (the second with the estimate of a check of the
 * new key made meanwhile: 23 of 20 under load).
 */
export function recreate(host: RecreateHost, s: SinkStream): Promise<void> {
  // Its group was destroyed by removeStream: a check of it still out then (the likeliest path; seen
  // once in a full run of sink.test.ts, not reproduced) made the group again at 0, with this
  // consumer in it, on a stream the sink no longer reads.
  if (s.left) return Promise.resolve();
  const running = recreating.get(s);
  if (running) return running;
  const done = recreateOnce(host, s).finally(() => recreating.delete(s));
  recreating.set(s, done);
  return done;
}

async function recreateOnce(host: RecreateHost, s: SinkStream): Promise<void> {
  // A group gone with its key: Go's Destroy may have moved Go's services to another key (goLifecycle.ts).
  s.stream.goLifecycle.recheck();
  // A key created anew (expired or destroyed, then added to again) took the
  // old group's unread and pending events with it; a group destroyed on a
  // living key gives them all back from 0.
  let reported = false;
  if (s.ready && s.added >= 0) {
    const now = await streamNow(host.control, s.stream.key);
    if (now.added < s.added) {
      await host.streamGone(s, now.first);
      reported = true;
    }
  }
  const keys = [s.stream.key, s.registry, s.keys.consumers];
  const ok = Number(await evalScript(host.control, recreateGroup, keys, [host.name, host.consumerName])) === 1;
  // The group starts over at 0: what was checked of the old one says nothing of it.
  s.checked = undefined;
  s.unverified = undefined;
  s.added = -1;
  s.lag = -1;
  if (ok) {
    // Found after a reconnect with no check since (Redis restarted without persistence, then a
    // producer's add): an event this instance read before it that is neither pending nor in the
    // stream now is one nothing redelivers, and no estimate counted it: its nack or dead letter
    // counts it lost; what it had not read is said lost, how many unknown. Without a reconnect,
    // what went with the key was reported by the check that found it gone (counting it here too
    // counted it twice).
    if (!reported) goneWithKey(s, (name, why, ids) => host.maybeLost(name, why, ids));
    // Accounted for: what a nack that met NOGROUP before this kept is counted or went another way.
    forgetUnsure(s);
    host.logger.warn({ stream: s.stream.name }, 'consumer group missing (NOGROUP): recreated at 0, events may be redelivered');
  } else {
    const was = s.ready;
    s.ready = false;
    host.logger.warn({ stream: s.stream.name }, 'stream key is gone (NOGROUP): waiting for it to be created again');
    if (was) await host.streamGone(s, undefined);
  }
}

/**
 * Of `streams`, whose keys were gone, those that may be back: one `EXISTS`
 * for all (per slot on a cluster), and the recreating script only where a key
 * is there. A script per stream made two commands per gone stream every
 * `awaitMs` (up to 4 a second each, for as long as a destroyed stream stays
 * gone: 400 a second for 100 of them, outside review T).
 */
export async function keysBack(
  control: OwnedConnection,
  streams: readonly SinkStream[],
  cluster: boolean,
): Promise<SinkStream[]> {
  const bySlot = new Map<number, SinkStream[]>();
  for (const s of streams) {
    const slot = cluster ? slotOf(s.stream.key) : 0;
    const group = bySlot.get(slot);
    if (group) group.push(s);
    else bySlot.set(slot, [s]);
  }
  const back: SinkStream[] = [];
  for (const group of bySlot.values()) {
    const keys = group.map((s) => s.stream.key);
    if (Number(await control.send(['EXISTS', ...keys], keys[0])) > 0) back.push(...group);
  }
  return back;
}

/**
 * Stream `s`'s key was gone (NOGROUP): once a producer created it again, its
 * group is created anew at 0 (whatever the new stream holds is this sink's)
 * and it is read again. Returns whether it was.
 */
export async function groupBack(
  host: Pick<RecreateHost, 'name' | 'consumerName' | 'control' | 'logger'>,
  s: SinkStream,
): Promise<boolean> {
  if (s.left) return false;
  const keys = [s.stream.key, s.registry, s.keys.consumers];
  if (Number(await evalScript(host.control, recreateGroup, keys, [host.name, host.consumerName])) !== 1) return false;
  s.ready = true;
  s.sweep.next = true;
  // What went with the key was reported when it was found gone (`applyTrimCheck`, `recreate`).
  forgetUnsure(s);
  s.checked = undefined;
  s.unverified = undefined;
  host.logger.warn({ stream: s.stream.name }, 'stream key is back: consumer group recreated at 0');
  return true;
}
