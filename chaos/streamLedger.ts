/**
 * The ledger of readers and producers: a reader delivers every added entry
 * once, in order, or reports it lost (delivered + reported lost = added); the
 * stream order of each producer's adds is the order it issued them, one
 * entry per add.
 */
import type { Oracle } from './oracle.js';
import { compareIds } from './oracle.js';
import { parsePayload } from './producer.js';

export interface ReaderLedger {
  slot: string;
  added: number;
  delivered: number;
  /** `reader.counters.lost`; undefined when the library has no reader counters yet. */
  lost: number | undefined;
  /** delivered + lost - added (entries of adds that failed but were stored are counted as added). */
  diff: number;
  missing: number;
  repeated: number;
  outOfOrder: number;
}

export interface AddLedger {
  issued: number;
  resolved: number;
  failed: number;
  /** Adds stored after an add the same producer issued later (resolved IDs and the stream's entries). */
  outOfOrder: number;
  /** Extra entries for one add. */
  doubleStored: number;
  scanned: number;
  examples: string[];
}

export function readerLedger(oracle: Oracle, slot: string): ReaderLedger {
  const expected = new Set(oracle.expected());
  const list = oracle.readers.get(slot) ?? [];
  const seen = new Set<string>();
  let repeated = 0;
  let outOfOrder = 0;
  let prev: string | undefined;
  let unconfirmed = 0;
  for (const h of list) {
    if (seen.has(h.id)) repeated++;
    else if (!expected.has(h.id)) unconfirmed++;
    seen.add(h.id);
    if (prev !== undefined && compareIds(h.id, prev) <= 0) outOfOrder++;
    prev = h.id;
  }
  let missing = 0;
  for (const id of expected) if (!seen.has(id)) missing++;
  const incs = oracle.workers.filter((w) => w.slot === slot);
  const counters = incs.map((w) => w.stats?.readerCounters);
  const lost = counters.some((c) => c?.lost !== undefined) ? counters.reduce((n, c) => n + (c?.lost ?? 0), 0) : undefined;
  const added = expected.size + unconfirmed;
  return { slot, added, delivered: seen.size, lost, diff: seen.size + (lost ?? 0) - added, missing, repeated, outOfOrder };
}

/** Checks the producers' adds against the stream: `entries` is the stream's content (ID, payload), oldest first. */
export function addLedger(oracle: Oracle, entries: Array<[string, string]>): AddLedger {
  const adds = [...oracle.adds.values()];
  const r: AddLedger = {
    issued: adds.length,
    resolved: adds.filter((a) => a.id !== undefined).length,
    failed: adds.filter((a) => a.failed).length,
    outOfOrder: 0,
    doubleStored: 0,
    scanned: entries.length,
    examples: [],
  };
  // Resolved adds: IDs increase with the issue number, per producer.
  const byProducer = new Map<number, typeof adds>();
  for (const a of adds) {
    const list = byProducer.get(a.producer) ?? [];
    list.push(a);
    byProducer.set(a.producer, list);
  }
  let resolvedInversions = 0;
  for (const [p, list] of byProducer) {
    list.sort((a, b) => a.k - b.k);
    let max: { id: string; k: number } | undefined;
    for (const a of list) {
      if (a.id === undefined) continue;
      if (max && compareIds(a.id, max.id) < 0) {
        resolvedInversions++;
        if (r.examples.length < 3)
          r.examples.push(`producer ${p}: add #${a.k} stored at ${a.id}, before add #${max.k} at ${max.id}`);
      } else max = { id: a.id, k: a.k };
    }
  }
  // The stream itself: one entry per add, issue numbers increasing per producer.
  const seen = new Map<string, number>();
  const lastK = new Map<number, number>();
  let storedInversions = 0;
  for (const [id, payload] of entries) {
    const t = parsePayload(payload);
    if (!t) continue;
    const key = `${t.producer}:${t.k}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > 1) {
      r.doubleStored++;
      if (r.examples.length < 6) r.examples.push(`add ${key} stored again at ${id}`);
      continue;
    }
    const last = lastK.get(t.producer);
    if (last !== undefined && t.k < last) storedInversions++;
    else lastK.set(t.producer, t.k);
  }
  r.outOfOrder = Math.max(resolvedInversions, storedInversions);
  return r;
}
