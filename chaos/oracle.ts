/**
 * The oracle: what the producer got back (IDs whose `add` resolved) against
 * what every handler saw (reported over IPC before the ack). From the two it
 * counts lost, duplicated and unexpected events.
 */
import type { CopyLife, Stamp, WorkerMessage, WorkerProc } from './consumers.js';

export interface Handling extends Partial<CopyLife> {
  id: string;
  seq: number;
  /** deliveryCount as the handler saw it. */
  dc: number;
  slot: string;
  inc: number;
  pid: number;
  /** When the parent received the report (ms). */
  at: number;
  x?: { en: string; len: number; sha: string } | undefined;
  /** The worker's clock when it got the event (st, sn) and when the handler finished (ts, n). */
  st: number;
  sn: number;
  ts: number;
  n: number;
  fail: boolean;
  /** The sink (or reader slot) it was delivered through. */
  sink: string;
}

/** A dead letter or a loss one consumer reported by ID, stamped with its clock. */
export interface Mark extends Stamp {
  kind: 'dead' | 'lost';
  id: string;
  w: WorkerProc;
  msg: string;
}

/** One `add` a producer issued: `k` is its issue number, in the order the producer issued them. */
export interface AddAttempt {
  producer: number;
  k: number;
  seq: number;
  /** The ID it resolved to; undefined while in flight or when it failed. */
  id?: string | undefined;
  failed?: boolean;
}

/** An entry added around the library (raw XADD) that must be delivered or dead-lettered. */
export interface RawEntry {
  kind: string;
  /** What the handler must see: event name, payload length and SHA-1. */
  expect: { en: string; len: number; sha: string };
}

export interface Summary {
  published: number;
  handled: number;
  lost: number;
  lostIds: string[];
  duplicated: number;
  dupIds: string[];
  unexpected: number;
  unexpectedIds: string[];
  /** Handled events whose add did not resolve (a retried add after a fault): not lost, not unexpected. */
  unconfirmed: number;
  deadLettered: number;
  /** IDs delivered more than once with deliveryCount 1 (a redelivery must say so). */
  dcViolations: string[];
}

export class Oracle {
  /** ID -> sequence number, for every add that resolved. */
  readonly published = new Map<string, { seq: number; name: string; at: number }>();
  /** Sequence numbers the producer tried to add (resolved or not). */
  readonly attempted = new Set<number>();
  readonly raw = new Map<string, RawEntry>();
  /** Successful handlings (the handler returned), by ID. */
  readonly handled = new Map<string, Handling[]>();
  /** Deliveries whose handler threw, by ID. */
  readonly failed = new Map<string, Handling[]>();
  /** Reader deliveries, by reader slot, in arrival order. */
  readonly readers = new Map<string, Handling[]>();
  /** IDs a sink reported lost (logged with their IDs): by whom, when, and the log message. */
  readonly lostReported = new Map<string, { slot: string; at: number; msg: string }>();
  /** Source IDs found in the dead-letter stream. */
  readonly dead = new Set<string>();
  /** Every worker incarnation started (`WorkerProc.start` adds them). */
  readonly workers: WorkerProc[] = [];
  readonly #bySlot = new Map<string, Handling[]>();
  /** Every delivery a sink handler or loop finished with (or failed), in arrival order. */
  readonly deliveries: Handling[] = [];
  /** Dead letters and losses reported by ID, per consumer, in arrival order. */
  readonly marks: Mark[] = [];
  /** Losses reported only as a count. */
  readonly lostCounts: Array<{ w: WorkerProc; count: number; ts: number; msg: string }> = [];
  /** Every add the producers issued, by `${producer}:${k}`. */
  readonly adds = new Map<string, AddAttempt>();
  /** IDs of entries added around the producers that must be delivered too (a dead-letter replay). */
  readonly extra = new Set<string>();

  /** When each copy's ack settled, by `${pid}:${id}` (the last one, when acked twice). */
  readonly acks = new Map<string, { at: number; ok: boolean }>();

  acked(w: WorkerProc, id: string, at: number, ok: boolean): void {
    this.acks.set(`${w.pid}:${id}`, { at, ok });
  }

  mark(w: WorkerProc, kind: 'dead' | 'lost', ids: string[], at: Stamp, msg: string): void {
    for (const id of ids) this.marks.push({ kind, id, w, ts: at.ts, n: at.n, msg });
  }

  publish(id: string, seq: number, name: string): void {
    this.published.set(id, { seq, name, at: Date.now() });
  }

  addRaw(id: string, entry: RawEntry): void {
    this.raw.set(id, entry);
  }

  record(w: WorkerProc, m: Extract<WorkerMessage, { t: 'h' }>): void {
    const h: Handling = {
      id: m.id,
      seq: m.seq,
      dc: m.dc,
      slot: w.slot,
      inc: w.inc,
      pid: w.pid,
      at: Date.now(),
      x: m.x,
      st: m.st,
      sn: m.sn,
      ts: m.ts,
      n: m.n,
      fail: m.fail === true,
      sink: w.config.mode === 'reader' ? w.slot : w.config.sink,
    };
    if (m.rd !== undefined) Object.assign(h, { rd: m.rd, ha: m.ha, lh: m.lh, rc: m.rc, ip: m.ip });
    if (w.config.mode !== 'reader') this.deliveries.push(h);
    if (w.config.mode === 'reader') {
      const list = this.readers.get(w.slot) ?? [];
      list.push(h);
      this.readers.set(w.slot, list);
    } else {
      const into = m.fail ? this.failed : this.handled;
      const list = into.get(m.id);
      if (list) list.push(h);
      else into.set(m.id, [h]);
    }
    const mine = this.#bySlot.get(w.slot) ?? [];
    mine.push(h);
    this.#bySlot.set(w.slot, mine);
  }

  /** Reports of one slot (all its incarnations, successful or not), in arrival order. */
  reportsOf(slot: string): Handling[] {
    return this.#bySlot.get(slot) ?? [];
  }

  /** Report times of one slot, in arrival order. */
  timesOf(slot: string): number[] {
    return this.reportsOf(slot).map((h) => h.at);
  }

  /** Events that must end handled, dead-lettered or reported lost. */
  expected(): string[] {
    return [...this.published.keys(), ...this.raw.keys(), ...this.extra];
  }

  /** True once every expected event was handled or dead-lettered. */
  allDone(): boolean {
    for (const id of this.published.keys()) if (!this.handled.has(id) && !this.dead.has(id)) return false;
    for (const id of this.raw.keys()) if (!this.handled.has(id) && !this.dead.has(id)) return false;
    return true;
  }

  /** How many expected events are not handled or dead-lettered yet. */
  outstanding(): number {
    let n = 0;
    for (const id of this.expected()) if (!this.handled.has(id) && !this.dead.has(id)) n++;
    return n;
  }

  summary(): Summary {
    const expected = new Set(this.expected());
    const lostIds = [...expected].filter((id) => !this.handled.has(id) && !this.dead.has(id));
    let duplicated = 0;
    const dupIds: string[] = [];
    const dcViolations: string[] = [];
    const unexpectedIds: string[] = [];
    let unconfirmed = 0;
    let handled = 0;
    for (const [id, list] of this.handled) {
      if (expected.has(id)) handled++;
      else if (list[0] && list[0].seq >= 0 && this.attempted.has(list[0].seq)) unconfirmed++;
      else unexpectedIds.push(id);
      if (list.length > 1) {
        duplicated += list.length - 1;
        dupIds.push(id);
        if (list.filter((h) => h.dc === 1).length > 1) dcViolations.push(id);
      }
    }
    for (const [id, list] of this.failed) {
      if (expected.has(id) || this.handled.has(id)) continue;
      // A failed delivery of an add that failed but was stored (a poison event added again) is not unexpected.
      if (list[0] && list[0].seq >= 0 && this.attempted.has(list[0].seq)) continue;
      unexpectedIds.push(id);
    }
    return {
      published: expected.size,
      handled,
      lost: lostIds.length,
      lostIds,
      duplicated,
      dupIds,
      unexpected: unexpectedIds.length,
      unexpectedIds,
      unconfirmed,
      deadLettered: this.dead.size,
      dcViolations,
    };
  }

  /** Reader check: every published entry once, in ID order. */
  readerReport(slot: string): { seen: number; missing: number; repeated: number; outOfOrder: number } {
    const list = this.readers.get(slot) ?? [];
    const seen = new Set<string>();
    let repeated = 0;
    let outOfOrder = 0;
    let prev: string | undefined;
    for (const h of list) {
      if (seen.has(h.id)) repeated++;
      seen.add(h.id);
      if (prev !== undefined && compareIds(h.id, prev) <= 0) outOfOrder++;
      prev = h.id;
    }
    let missing = 0;
    for (const id of this.expected()) if (!seen.has(id)) missing++;
    return { seen: seen.size, missing, repeated, outOfOrder };
  }
}

/** Compares two stream entry IDs numerically. */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm);
  if (d !== 0n) return d < 0n ? -1 : 1;
  const e = BigInt(as) - BigInt(bs);
  return e === 0n ? 0 : e < 0n ? -1 : 1;
}

/** Longest stretch without a report in [from, to] (ms), given sorted report times. */
export function longestGap(times: number[], from: number, to: number): number {
  let prev = from;
  let gap = 0;
  for (const t of times) {
    if (t < from) continue;
    if (t > to) break;
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}
