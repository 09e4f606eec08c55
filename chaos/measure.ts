/**
 * Measurements taken from outside the library, shared by the scenarios: when
 * a stopped or dead consumer's events were claimed, when a consumer made
 * progress after a fault, and how to stop a consumer while it owns events.
 */
import type { WorkerProc } from './consumers.js';
import { pause, waitUntil } from './harness.js';
import type { Profile, Run } from './run.js';

export const byProfile = <T>(profile: Profile, short: T, full: T): T => (profile === 'short' ? short : full);
export const ms = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);

/** Polls a consumer's pending list until it is empty: when a dead or stopped consumer's events were claimed. */
export async function claimedAfter(run: Run, consumer: string, since: number, timeoutMs: number): Promise<number | undefined> {
  const ok = await waitUntil(
    async () => (await run.admin.pendingOf(run.key, run.sinkName, consumer, 1)).length === 0,
    timeoutMs,
    25,
  );
  return ok ? Date.now() - since : undefined;
}

/** Time from `since` until someone other than `pid` handled each of `ids` (undefined: some never were). */
export function handledElsewhereAfter(run: Run, ids: string[], pid: number, since: number): number | undefined {
  let worst = 0;
  for (const id of ids) {
    const h = run.oracle.handled.get(id)?.find((x) => x.pid !== pid && x.at >= since);
    if (!h) return undefined;
    worst = Math.max(worst, h.at - since);
  }
  return worst;
}

/** Waits until each slot handled at least `n` events. */
export async function warmedUp(run: Run, slots: string[], n: number, timeoutMs = 15_000): Promise<boolean> {
  const ok = await waitUntil(() => slots.every((s) => run.oracle.reportsOf(s).length >= n), timeoutMs, 25);
  run.phase('warm-up');
  return ok;
}

/** SIGSTOPs `w` at a moment it owns pending events; resolves to when, and what it owned (empty: never managed). */
export async function stopWhileOwning(run: Run, w: WorkerProc): Promise<{ stoppedAt: number; owned: string[] }> {
  for (let i = 0; i < 100; i++) {
    if ((await run.admin.pendingOf(run.key, run.sinkName, w.consumer, 1)).length === 0) {
      await pause(20);
      continue;
    }
    w.signal('SIGSTOP');
    const stoppedAt = Date.now();
    const owned = await run.admin.pendingOf(run.key, run.sinkName, w.consumer);
    if (owned.length > 0) return { stoppedAt, owned };
    w.signal('SIGCONT');
    await pause(20);
  }
  return { stoppedAt: Date.now(), owned: [] };
}

/** Time from `back` until `slot` handled an event whose add resolved after `back`. */
export function progressAfter(run: Run, slot: string, back: number): number | undefined {
  for (const h of run.oracle.reportsOf(slot)) {
    const p = run.oracle.published.get(h.id);
    if (p && p.at >= back) return h.at - back;
  }
  return undefined;
}
