/**
 * Holding buffered events: events read but still waiting in a subscription
 * buffer are kept from redelivery (idle time 0) while their subscriber keeps
 * taking events, and blocking reads are verified, on a timer of their own so
 * that they never wait behind a slow subscriber or the sweep.
 */
import { Backoff, sleep } from './backoff.js';
import { monotonicNow } from './clock.js';
import { streamKey } from './keys.js';
import { errorText, isReplyError, isRetryable, toPulseError } from './redisErrors.js';
import type { MaintenanceHost } from './sinkHosts.js';

/**
 * Keeps buffered events from redelivery and verifies blocking reads, on
 * its own timer, never behind a slow subscriber. Costs nothing in Redis
 * while nothing is buffered and nothing was read.
 */
export async function holdLoop(host: MaintenanceHost, holdMs: number, signal: AbortSignal): Promise<void> {
  const backoff = new Backoff(100, 2000);
  while (!signal.aborted) {
    let delay = holdMs;
    try {
      releaseStalled(host);
      await holdBuffered(host);
      await host.verifyReads();
      if (backoff.failures > 0) host.logger.info({ failures: backoff.failures }, 'holding buffered events recovered');
      backoff.reset();
    } catch (err) {
      if (!signal.aborted && !isRetryable(err)) {
        host.fail(toPulseError(err, 'sink stopped: Redis refused to keep its buffered events for good'));
        return;
      }
      delay = Math.max(delay, backoff.next());
      if (!signal.aborted)
        host.logger.warn(
          { err: errorText(err), failures: backoff.failures, retryInMs: delay },
          'holding buffered events failed, retrying',
        );
    }
    await sleep(delay, signal);
  }
}

/**
 * A subscriber that took nothing for a grace period (a `for await` loop
 * stuck in its body, a subscription never iterated) keeps no events from
 * the others: what it buffered goes to the instance's other subscriptions,
 * or, when there is none that takes events, is given back with the delivery
 * count it had before this instance read it, to be taken back at once if it
 * asks again within a grace period, or to go to another instance after it.
 */
function releaseStalled(host: MaintenanceHost): void {
  const released = host.fanout.releaseStalled(monotonicNow() - host.settings.graceMs);
  if (released > 0)
    host.logger.warn(
      { count: released },
      'a subscription took no event for a grace period: its buffered events go to the other subscriptions, or back to the sink',
    );
}

/**
 * Events read but still waiting in a subscription's buffer are not being
 * worked on yet: keep their idle time at 0 so the grace period runs from
 * hand-off, not from the read, and a slow subscriber does not cause a storm
 * of redeliveries. Only while the subscriber keeps taking events: a stuck
 * one lets them go to others after the grace period.
 */
async function holdBuffered(host: MaintenanceHost): Promise<void> {
  if (host.settings.noAck) return;
  const at = monotonicNow();
  const activeSince = at - host.settings.graceMs;
  const held: Array<{ markHeld(at: number): void }> = [];
  // stream name -> id -> keep its idle time at 0 (the subscriber is active) or only check it still exists.
  // By name, the same string object for every event of a stream: no key built per buffered event.
  const byStream = new Map<string, Map<string, boolean>>();
  for (const sub of host.fanout.subs) {
    const active = sub.lastActivity >= activeSince;
    if (active) held.push(sub);
    for (const ev of sub.queued()) {
      const ids = byStream.get(ev.streamName) ?? new Map<string, boolean>();
      byStream.set(ev.streamName, ids);
      ids.set(ev.id, active || ids.get(ev.id) === true);
    }
  }
  for (const [name, ids] of byStream) {
    const key = streamKey(name);
    for (const hold of [true, false]) {
      const batch = [...ids].filter(([, h]) => h === hold).map(([id]) => id);
      for (let i = 0; i < batch.length; i += 500) {
        // Only what is still buffered as it leaves: an event taken and
        // nacked meanwhile must keep the idle time its nack gave it (the
        // nack travels on this same connection, so it runs after this).
        const slice = hold ? host.stillBuffered(name, batch.slice(i, i + 500)) : batch.slice(i, i + 500);
        if (slice.length === 0) continue;
        let gone: string[];
        try {
          // Held only while still ours: what another consumer took meanwhile
          // is dropped, so that marking the buffer held below stays true.
          if (hold) {
            await host.holdOwned(name, slice);
            continue;
          }
          gone = await host.touch(host.control, name, -1, slice);
        } catch (err) {
          // The stream or the group is gone: the read path accounts for what
          // went with it (the read loop may be paused by full buffers).
          if (!isReplyError(err, 'NOGROUP')) throw err;
          await host.recover(name);
          break;
        }
        if (gone.length === 0) continue;
        // Trimmed while waiting in a buffer: taken out, so that what is
        // handled and what is reported lost never overlap. Those a
        // subscriber took meanwhile are its to ack (or nack, which reports them).
        const dropped = host.dropBuffered(name, gone);
        if (dropped.length > 0) await host.reportGone(key, dropped, 'events trimmed or deleted while waiting for a subscriber');
      }
    }
  }
  // Every event these buffered as the hold began is now held as of then.
  for (const sub of held) sub.markHeld(at);
}
