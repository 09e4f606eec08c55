/**
 * The per-sink ledger of the delivery contract (SEMANTICS.md sections 4 and 9):
 * for each sink, across all its consumers, every expected event ends handled
 * XOR dead-lettered XOR reported lost, and the orders of events in time that
 * the contract forbids (handed to a handler after a dead letter or a loss
 * report, dead-lettered after a handler finished it, redelivered under
 * `process()` while its consumer lives). Readers and producers: streamLedger.ts.
 *
 * A fault on a consumer (kill -9, SIGSTOP) explains what that consumer had
 * already handed to a handler and still owned; a fault of Redis or of its
 * connections explains a lost ack (a duplicate) around it. Nothing else is
 * explained away.
 */
import type { Handling, Mark, Oracle } from './oracle.js';

/** Faults the harness injected, as the ledger needs them. */
export interface FaultLog {
  /** A consumer killed or stopped at `at`, and what it owned (its pending list) right after. */
  consumer: Array<{ pid: number; at: number; kind: 'kill' | 'stop'; owned: Set<string> }>;
  /** Redis stopped or restarted, connections killed: [from, to] in ms. */
  windows: Array<{ from: number; to: number; kind: string }>;
}

export const emptyFaults = (): FaultLog => ({ consumer: [], windows: [] });

/** Every dead letter ever read (replays delete them from the dead-letter stream). */
export type Letters = Map<string, { sourceSink: string; sourceId: string }>;

export interface SinkLedger {
  sink: string;
  mode: string;
  expected: number;
  handled: number;
  deadLettered: number;
  lostById: number;
  /** Losses counted by the sink (`counters.lost`) beyond those reported by ID. */
  lostByCount: number;
  /** Losses logged (by ID or count) that `counters.lost` did not count. */
  loggedNotCounted: number;
  lostSilently: number;
  overReported: number;
  unexpected: number;
  duplicates: number;
  duplicatesWithoutFault: number;
  /** Duplicates a fault explains, by the fault (what took the event from the first consumer that had it in hand). */
  duplicateCauses: Record<string, number>;
  dcViolations: number;
  redeliveredWhileAlive: number;
  deadAfterHandled: number;
  handedAfterOwnDead: number;
  handedAfterOwnLost: number;
  handedAfterOtherDead: number;
  handedAfterOtherLost: number;
  handledAndDead: number;
  handledAndLost: number;
  deadAndLost: number;
  deadTwice: number;
  faultExplained: number;
  examples: Record<string, string[]>;
}

/** A copy's life for the examples, in ms from `t0`: read, believed held, last hold, check, hand-out, finish, in-progress touch. */
function lifeText(d: Handling, t0: number, ackAt: number | undefined): string {
  const rel = (v: number | undefined) => (v ? String(v - t0) : '-');
  return `[read ${rel(d.rd)} held ${rel(d.ha)} hold ${rel(d.lh)} check ${rel(d.rc)} handed ${rel(d.st)} done ${rel(d.ts)} touch ${rel(d.ip)} acked ${rel(ackAt)}]`;
}

const push = (ex: Record<string, string[]>, k: string, v: string) => {
  const list = ex[k] ?? [];
  if (list.length < 3) list.push(v);
  ex[k] = list;
};

export function sinkLedger(oracle: Oracle, sink: string, faults: FaultLog, letters: Letters, graceMs: number): SinkLedger {
  const expected = new Set(oracle.expected());
  const workers = oracle.workers.filter((w) => w.config.mode !== 'reader' && w.config.sink === sink);
  const pids = new Set(workers.map((w) => w.pid));
  const ds = oracle.deliveries.filter((d) => d.sink === sink);
  const marks = oracle.marks.filter((m) => m.w.config.mode !== 'reader' && m.w.config.sink === sink);
  const ex: Record<string, string[]> = {};

  const byId = new Map<string, Handling[]>();
  for (const d of ds) {
    const list = byId.get(d.id) ?? [];
    list.push(d);
    byId.set(d.id, list);
  }
  const marksOf = new Map<string, Mark[]>();
  for (const m of marks) {
    const list = marksOf.get(m.id) ?? [];
    list.push(m);
    marksOf.set(m.id, list);
  }
  const dead = new Set(marks.filter((m) => m.kind === 'dead').map((m) => m.id));
  const letterCount = new Map<string, number>();
  for (const l of letters.values()) {
    if (l.sourceSink !== sink) continue;
    dead.add(l.sourceId);
    letterCount.set(l.sourceId, (letterCount.get(l.sourceId) ?? 0) + 1);
  }
  const lost = new Set(marks.filter((m) => m.kind === 'lost').map((m) => m.id));
  const handled = new Set(ds.filter((d) => !d.fail).map((d) => d.id));

  // What a fault explains: a delivery handed out before its consumer was killed or stopped while owning the event,
  // or finished around a Redis or connection fault (its ack may be lost).
  const faultOn = faults.consumer.filter((f) => pids.has(f.pid));
  const ownedAtFault = new Set(faultOn.flatMap((f) => [...f.owned]));
  // In hand during a Redis or connection fault (1 s either side, and a grace period after): its hold or its ack may be lost.
  const inWindow = (d: Handling) => faults.windows.some((w) => d.ts >= w.from - 1000 && d.st <= w.to + graceMs + 1000);
  // Frozen while it had the event in hand: no hold of the copy (read, hold, check, in-progress touch:
  // the worker's stamps) reached Redis for more than a grace period before its ack settled, and its
  // event loop stood still for half a grace period or more in that time, after the hand-out (SIGSTOP,
  // or a host that did not run it): the owner could not
  // hold it, and another consumer rightly took it (SEMANTICS section 4: redelivery after the grace period).
  const gapsOf = new Map(workers.map((w) => [w.pid, w.gaps]));
  const frozenInHand = (d: Handling): boolean => {
    const end = oracle.acks.get(`${d.pid}:${d.id}`)?.at ?? d.ts;
    const held = Math.max(d.ha || d.rd || 0, d.lh ?? 0, d.rc ?? 0, d.ip ?? 0) || d.st;
    if (end - held <= graceMs) return false;
    // The freeze must reach into the time it was in hand: one that ended before the hand-out left a stale
    // hold that the sink must check before handing the event out (that would be a defect, not a fault).
    // And long enough to skip holds (they come every grace / 4 or / 3): half a grace period at least.
    return (gapsOf.get(d.pid) ?? []).some(([a, b]) => b > d.st && a <= end && b - a >= graceMs / 2);
  };
  // Cut off from Redis while it had the event in hand: its client was down, or a command of its
  // sink failed (an ack, an in-progress touch, a hold): its ack or its hold may not have reached Redis.
  const workerOf = new Map(workers.map((w) => [w.pid, w]));
  const cutOffInHand = (d: Handling): boolean => {
    const w = workerOf.get(d.pid);
    if (!w) return false;
    const end = oracle.acks.get(`${d.pid}:${d.id}`)?.at ?? d.ts;
    return w.down.some(([a, b]) => b >= d.st && a <= end) || w.failures.some((t) => t >= d.st && t <= end + 100);
  };
  // Who held an event before a redelivery that no handler saw is unknown: another worker of the sink whose
  // event loop stood still for half a grace period or more, up to a few grace periods before the hand-out
  // (a starved host), could not hold what it had buffered, and its events rightly went to another consumer.
  const recentGaps = (d: Handling) =>
    workers
      .filter((w) => w.pid !== d.pid)
      .flatMap((w) => w.gaps.filter(([a, b]) => b <= d.st && b >= d.st - 3 * graceMs - 1000 && a < b).map((g) => ({ w, g })));
  const starvedBefore = (d: Handling) => recentGaps(d).find(({ g: [a, b] }) => b - a >= graceMs / 2);
  const longestGapBefore = (d: Handling): string | undefined => {
    let best: { w: (typeof workers)[number]; g: [number, number] } | undefined;
    for (const x of recentGaps(d)) if (!best || x.g[1] - x.g[0] > best.g[1] - best.g[0]) best = x;
    return best && `${best.w.slot}#${best.w.inc} ${best.g[1] - best.g[0]} ms, ${d.st - best.g[1]} ms before`;
  };
  // Why a fault explains that `d` was handled again by others, or undefined.
  const faultOf = (d: Handling): string | undefined => {
    const f = faultOn.find((x) => x.pid === d.pid && d.st <= x.at && x.owned.has(d.id));
    if (f) return f.kind === 'stop' ? 'stopped (SIGSTOP) with it in hand' : 'killed with it in hand';
    if (frozenInHand(d)) return 'event loop frozen with it in hand past the grace period';
    if (inWindow(d)) return 'in hand during a Redis or connection fault';
    if (cutOffInHand(d)) return 'in hand while its connection to Redis failed';
    return undefined;
  };
  const explained = (d: Handling): boolean => faultOf(d) !== undefined;
  // A for await loop that took no event for longer than the grace period gave its buffered events back:
  // their redelivery (deliveryCount > 1) is the contract (SEMANTICS section 9), not a fault.
  const loopGaps = new Map<number, Array<[number, number]>>();
  for (const w of workers) {
    if (w.config.mode !== 'subscribe') continue;
    const times = ds.filter((d) => d.pid === w.pid).map((d) => d.st);
    times.sort((a, b) => a - b);
    const gaps: Array<[number, number]> = [];
    for (let i = 1; i < times.length; i++) {
      const [a, b] = [times[i - 1] as number, times[i] as number];
      if (b - a > graceMs) gaps.push([a, b]);
    }
    loopGaps.set(w.pid, gaps);
  }
  const processOnly = workers.every((w) => w.config.mode === 'process');
  // For the examples: the Redis or connection fault nearest to a delivery, relative to when its handler got it.
  const nearest = (d: Handling): string => {
    let best: { kind: string; from: number; to: number } | undefined;
    const dist = (w: { from: number; to: number }) => (d.st < w.from ? w.from - d.st : d.st > w.to ? d.st - w.to : 0);
    for (const w of faults.windows) if (!best || dist(w) < dist(best)) best = w;
    return best ? `; nearest fault ${best.kind} ${best.from - d.st} to ${best.to - d.st} ms from the first hand-out` : '';
  };
  // For the examples: the last kill or stop of the consumer that handed `d` out, before it did.
  const lastFaultOf = (d: Handling): string => {
    const f = faultOn.filter((x) => x.pid === d.pid && x.at <= d.st).pop();
    return f ? ` (${f.kind === 'stop' ? 'stopped' : 'killed'} ${d.st - f.at} ms before)` : '';
  };
  const givenBack = (copies: Handling[], later: Handling): boolean => {
    if (later.dc <= 1) return false;
    const from = Math.min(...copies.map((c) => c.st)) - 5 * graceMs;
    return copies.some((c) => (loopGaps.get(c.pid) ?? []).some(([a, b]) => b >= from && a <= later.st));
  };

  const r: SinkLedger = {
    sink,
    mode: [...new Set(workers.map((w) => w.config.mode))].join('+'),
    expected: expected.size,
    handled: [...handled].filter((id) => expected.has(id)).length,
    deadLettered: [...dead].filter((id) => expected.has(id)).length,
    lostById: [...lost].filter((id) => expected.has(id)).length,
    lostByCount: 0,
    loggedNotCounted: 0,
    lostSilently: 0,
    overReported: 0,
    unexpected: 0,
    duplicates: 0,
    duplicatesWithoutFault: 0,
    duplicateCauses: {},
    dcViolations: 0,
    redeliveredWhileAlive: 0,
    deadAfterHandled: 0,
    handedAfterOwnDead: 0,
    handedAfterOwnLost: 0,
    handedAfterOtherDead: 0,
    handedAfterOtherLost: 0,
    handledAndDead: 0,
    handledAndLost: 0,
    deadAndLost: 0,
    deadTwice: 0,
    faultExplained: 0,
    examples: ex,
  };

  // Counted losses: each consumer's counters.lost beyond what it reported by ID.
  for (const w of workers) {
    const byIdMine = new Set(marks.filter((m) => m.kind === 'lost' && m.w === w).map((m) => m.id)).size;
    const logged = byIdMine + oracle.lostCounts.filter((c) => c.w === w).reduce((n, c) => n + c.count, 0);
    const counted = w.stats?.counters.lost ?? 0;
    r.lostByCount += Math.max(0, counted - byIdMine);
    r.loggedNotCounted += Math.max(0, logged - counted);
  }
  let covered = 0;
  for (const id of expected) if (handled.has(id) || dead.has(id) || lost.has(id)) covered++;
  const failedAdds = [...oracle.adds.values()].filter((a) => a.failed).length;
  const balance = expected.size - covered - r.lostByCount;
  r.lostSilently = Math.max(0, balance);
  // Entries of adds that failed but were stored may be counted lost too: only beyond those is it over-reported.
  r.overReported = Math.max(0, -balance - failedAdds);
  if (r.lostSilently > 0)
    for (const id of expected) if (!handled.has(id) && !dead.has(id) && !lost.has(id)) push(ex, 'lostSilently', id);

  for (const id of handled) {
    if (expected.has(id)) continue;
    const seq = byId.get(id)?.[0]?.seq ?? -1;
    if (seq >= 0 && oracle.attempted.has(seq)) continue; // an add that failed but was stored
    r.unexpected++;
    push(ex, 'unexpected', id);
  }
  for (const [id, n] of letterCount)
    if (n > 1) {
      r.deadTwice += n - 1;
      push(ex, 'deadTwice', id);
    }

  for (const [id, list] of byId) {
    // In the order their handlers got them: the first in hand is the owner a fault may have taken it from
    // (one handed out before a freeze may finish after the copy another consumer took meanwhile).
    const ok = list.filter((d) => !d.fail).sort((a, b) => a.st - b.st || a.ts - b.ts);
    if (list.filter((d) => d.dc === 1).length > 1) {
      r.dcViolations++;
      push(ex, 'dcViolations', id);
    }
    for (let j = 1; j < ok.length; j++) {
      r.duplicates++;
      const why =
        ok.slice(0, j).map(faultOf).find(Boolean) ??
        (givenBack(ok.slice(0, j + 1), ok[j] as Handling)
          ? 'given back by a for await loop idle past the grace period'
          : undefined);
      if (why) {
        r.duplicateCauses[why] = (r.duplicateCauses[why] ?? 0) + 1;
        continue;
      }
      r.duplicatesWithoutFault++;
      push(
        ex,
        'duplicatesWithoutFault',
        `${id} (${ok.map((d) => `${d.slot}#${d.inc} dc ${d.dc}${lastFaultOf(d)} ${lifeText(d, ok[0]?.st ?? 0, oracle.acks.get(`${d.pid}:${d.id}`)?.at)}`).join(', ')}${nearest(ok[0] as Handling)})`,
      );
    }
    // Under process(), a delivery with deliveryCount > 1 needs a reason: a failed delivery before, a fault, or
    // (in a sink that also has for await consumers) an earlier holder that may give events back. Who held an
    // event that no handler saw is unknown: only a sink of process() consumers alone counts those.
    for (const d of list) {
      const w = workers.find((x) => x.pid === d.pid);
      if (w?.config.mode !== 'process' || d.dc <= 1) continue;
      const earlier = list.filter((e) => e !== d && e.st < d.st);
      // A holder is known by a delivery of a lower count, whenever its handler got it (a stale copy handed late).
      const heldBefore = list.filter((e) => e !== d && e.dc < d.dc);
      const reason =
        earlier.some((e) => e.fail) ||
        ownedAtFault.has(id) ||
        earlier.some(explained) ||
        heldBefore.some(explained) ||
        faults.windows.some((x) => d.st >= x.from && d.st <= x.to + 3 * graceMs + 1000) ||
        starvedBefore(d) !== undefined ||
        (!processOnly && !heldBefore.some((e) => workers.find((x) => x.pid === e.pid)?.config.mode === 'process'));
      if (reason) continue;
      r.redeliveredWhileAlive++;
      const gap = longestGapBefore(d);
      push(ex, 'redeliveredWhileAlive', `${id} to ${d.slot}#${d.inc} dc ${d.dc}${gap ? `, longest gap before: ${gap}` : ''}`);
    }
    // Handed to a handler after a dead letter or a loss report of the same sink.
    for (const d of list) {
      for (const m of marksOf.get(id) ?? []) {
        const own = m.w.pid === d.pid;
        if (own ? m.n >= d.sn : m.ts >= d.st) continue;
        const k = `handedAfter${own ? 'Own' : 'Other'}${m.kind === 'dead' ? 'Dead' : 'Lost'}` as const;
        r[k]++;
        push(ex, k, `${id} ${m.w.slot}#${m.w.inc} '${m.msg}' then ${d.slot}#${d.inc} dc ${d.dc} ${d.st - m.ts} ms later`);
        break;
      }
    }
  }

  // XOR: handled, dead-lettered, reported lost.
  for (const id of expected) {
    const h = handled.has(id);
    const dl = dead.has(id);
    const l = lost.has(id);
    if (!((h && dl) || (h && l) || (dl && l))) continue;
    const ok = (byId.get(id) ?? []).filter((d) => !d.fail);
    if ((h && !dl && l) || (h && dl && !l)) {
      if (ok.some(explained)) {
        r.faultExplained++;
        continue;
      }
    }
    if (h && dl) {
      r.handledAndDead++;
      push(ex, 'handledAndDead', id);
      const firstDone = Math.min(...ok.map((d) => d.ts));
      const deadAt = (marksOf.get(id) ?? []).filter((m) => m.kind === 'dead').map((m) => m.ts);
      if (deadAt.length === 0 || Math.min(...deadAt) > firstDone) {
        r.deadAfterHandled++;
        push(ex, 'deadAfterHandled', id);
      }
    }
    if (h && l) {
      r.handledAndLost++;
      push(ex, 'handledAndLost', id);
    }
    if (dl && l) {
      r.deadAndLost++;
      push(ex, 'deadAndLost', id);
    }
  }
  return r;
}

/** Must be 0 in every sink ledger (the soak's table and the scenarios' checks). */
export const SINK_INVARIANTS: Array<[keyof SinkLedger, string]> = [
  ['lostSilently', 'lost silently (neither handled, dead-lettered nor reported lost)'],
  ['overReported', 'reported lost beyond what is missing'],
  ['loggedNotCounted', 'losses logged but not counted (counters.lost)'],
  ['unexpected', 'unexpected (handled, never added)'],
  ['duplicatesWithoutFault', 'duplicates without a fault'],
  ['dcViolations', 'redelivered with deliveryCount 1'],
  ['redeliveredWhileAlive', 'redelivered under process() while its consumer lives'],
  ['deadAfterHandled', 'dead-lettered after a handler finished it'],
  ['handedAfterOwnDead', 'handed to a handler after its own consumer dead-lettered it'],
  ['handedAfterOwnLost', 'handed to a handler after its own consumer reported it lost'],
  ['handedAfterOtherDead', 'handed to a handler after another consumer dead-lettered it'],
  ['handedAfterOtherLost', 'handed to a handler after another consumer reported it lost'],
  ['handledAndDead', 'handled and dead-lettered'],
  ['handledAndLost', 'handled and reported lost'],
  ['deadAndLost', 'dead-lettered and reported lost'],
  ['deadTwice', 'dead-lettered twice'],
];
