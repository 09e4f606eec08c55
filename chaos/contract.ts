/**
 * What the contract scenarios (issue 13) and the soak share: faults that the
 * ledger must know about (a consumer killed or frozen with what it owned,
 * Redis away), XDEL of unread and pending entries, a scan of the stream, and
 * the ledger's checks (ledger.ts) added to a run.
 */
import { Stream } from '../packages/pulse-streaming/src/index.js';
import type { WorkerProc } from './consumers.js';
import { pause, REDIS_STALL_MS, waitUntil, within } from './harness.js';
import { SINK_INVARIANTS, type SinkLedger, sinkLedger } from './ledger.js';
import type { Run } from './run.js';
import { type AddLedger, addLedger, type ReaderLedger, readerLedger } from './streamLedger.js';

/** kill -9 of a consumer; records what it still owned. */
export async function killConsumer(run: Run, w: WorkerProc, sink = run.sinkName): Promise<void> {
  const at = Date.now();
  await w.kill9();
  const owned = new Set(await run.admin.pendingOf(run.key, sink, w.consumer).catch(() => [] as string[]));
  run.faults.consumer.push({ pid: w.pid, at, kind: 'kill', owned });
}

/** SIGSTOP of a consumer for `ms`, then SIGCONT; records what it owned when stopped. */
export async function freezeConsumer(run: Run, w: WorkerProc, ms: number, sink = run.sinkName): Promise<void> {
  w.signal('SIGSTOP');
  const at = Date.now();
  const owned = new Set(await run.admin.pendingOf(run.key, sink, w.consumer).catch(() => [] as string[]));
  run.faults.consumer.push({ pid: w.pid, at, kind: 'stop', owned });
  // A read it was blocked in still takes a batch after the stop: that is its own too.
  for (let i = 0; i < 1000 && Date.now() - at < ms; i++) {
    for (const id of await run.admin.pendingOf(run.key, sink, w.consumer).catch(() => [] as string[])) owned.add(id);
    await pause(Math.min(100, ms - (Date.now() - at)));
  }
  w.signal('SIGCONT');
}

/** Runs `fault` (Redis away, connections killed) and records its window. */
export async function redisWindow(run: Run, kind: string, fault: () => Promise<void>): Promise<void> {
  const from = Date.now();
  try {
    await fault();
  } finally {
    run.faults.windows.push({ from, to: Date.now(), kind });
  }
}

/** Redis restarted: SIGKILL (AOF fsync always), down for `downMs`, started again. */
export function restartRedis(run: Run, downMs: number): Promise<void> {
  return redisWindow(run, 'restart', async () => {
    await run.server.kill('SIGKILL');
    await pause(downMs);
    await run.server.restart();
  });
}

/**
 * Collects the stalls Redis recorded in its latency monitor (every event of
 * `REDIS_STALL_MS` or more: `aof-fsync-always`, `command`...) into the fault
 * windows as `redis-stall`, until the returned function is called (it reads
 * them one last time). Redis keeps the last 160 per event with second
 * resolution, and a restart clears them: read every 5 s. Such a stall cut
 * every consumer off from Redis as a pause does: a reply it sent late (a read
 * after an fsync of seconds) reaches its consumer when the entries are
 * already idle past the grace period.
 */
export function watchRedisStalls(run: Run): () => Promise<void> {
  const seen = new Set<string>();
  const collect = async (): Promise<void> => {
    const latest = (await run.admin.call(['LATENCY', 'LATEST']).catch(() => [])) as unknown[][];
    for (const row of latest) {
      const event = String(row[0]);
      const history = (await run.admin.call(['LATENCY', 'HISTORY', event]).catch(() => [])) as unknown[][];
      for (const [sec, ms] of history) {
        const key = `${event}:${sec}:${ms}`;
        if (seen.has(key) || Number(ms) < REDIS_STALL_MS) continue;
        seen.add(key);
        // Recorded in the second the operation ended: it began up to `ms` before that second.
        const end = Number(sec) * 1000 + 1000;
        run.faults.windows.push({ from: end - 1000 - Number(ms), to: end, kind: `redis-stall (${event} ${ms} ms)` });
      }
    }
  };
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; i < 100_000 && !stopped; i++) {
      await collect();
      await pause(5000);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    await collect();
  };
}

/** Picks up to `unread` entries the sink's group has not read yet and `pending` ones it has (deleted by `xdel` with the library's `remove()`). */
const XDEL_SCRIPT = `
local key, group = KEYS[1], ARGV[1]
local nu, np = tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', key) == 0 then return {{}, {}} end
local last
for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local name, ld
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then ld = g[i + 1] end
  end
  if name == group then last = ld end
end
if not last then return {{}, {}} end
local unread, pending = {}, {}
if nu > 0 then
  for _, e in ipairs(redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', nu)) do unread[#unread + 1] = e[1] end
end
if np > 0 then
  for _, p in ipairs(redis.call('XPENDING', key, group, '-', '+', np)) do pending[#pending + 1] = p[1] end
end
return {unread, pending}`;

/** Every entry the harness deleted, and whether the sink's group had read it then. */
export const deletedOf = new WeakMap<Run, Map<string, 'unread' | 'pending'>>();

export async function xdel(run: Run, unread: number, pending: number, sink = run.sinkName): Promise<number> {
  const reply = (await run.admin.call(['EVAL', XDEL_SCRIPT, 1, run.key, sink, unread, pending])) as unknown[][];
  // Deleted the way users delete: stream.remove(), which reports unread
  // entries to every sink (an XDEL from another program is logged as an
  // unknown count instead: README, "Delivery guarantees").
  const ids = [...(reply[0] ?? []), ...(reply[1] ?? [])].map(String);
  if (ids.length > 0) await within(new Stream(run.streamName, run.admin.redis, { maxLen: 0 }).remove(...ids), 3000, 'remove');
  const map = deletedOf.get(run) ?? new Map<string, 'unread' | 'pending'>();
  deletedOf.set(run, map);
  for (const id of reply[0] ?? []) map.set(String(id), 'unread');
  for (const id of reply[1] ?? []) map.set(String(id), 'pending');
  return (reply[0]?.length ?? 0) + (reply[1]?.length ?? 0);
}

/** The stream's entries (ID, payload), oldest first. */
export async function scanStream(run: Run, key = run.key): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  let from = '-';
  for (let i = 0; i < 10_000; i++) {
    const page = (await run.admin.call(['XRANGE', key, from, '+', 'COUNT', 10_000], 10_000)) as Array<[string, string[]]>;
    for (const [id, fields] of page) {
      const at = fields.indexOf('p');
      out.push([String(id), at >= 0 ? String(fields[at + 1]) : '']);
    }
    if (page.length < 10_000) break;
    from = `(${page[page.length - 1]?.[0]}`;
  }
  return out;
}

export interface ContractOptions {
  sinks: string[];
  readers: string[];
  graceMs: number;
  /**
   * A stream expired under the sinks: what they count lost then is an estimate
   * that may exceed what is missing (README, "Delivery guarantees"); the
   * excess is noted, not failed. Nothing may be lost silently all the same.
   */
  lossEstimated?: boolean;
  /** Check the producers' order and one entry per add against the stream (not after a trim or a TTL expiry). */
  scan?: boolean;
}

export interface ContractResult {
  sinks: SinkLedger[];
  readers: ReaderLedger[];
  adds: AddLedger;
}

const nonZero = (l: SinkLedger): string[] =>
  SINK_INVARIANTS.filter(([k]) => Number(l[k]) !== 0).map(
    ([k, what]) => `${what}: ${l[k]}${l.examples[k] ? ` (e.g. ${l.examples[k].join('; ')})` : ''}`,
  );

/** Reads the dead letters, scans the stream and adds the ledger's checks to `run`. Call after the workers stopped. */
export async function contractChecks(run: Run, o: ContractOptions): Promise<ContractResult> {
  await run.deadLetterSources().catch((err: unknown) => run.note(`dead letters not read: ${String(err)}`));
  const entries = o.scan ? await within(scanStream(run), 30_000, 'scan').catch(() => undefined) : [];
  const sinks = o.sinks.map((s) => sinkLedger(run.oracle, s, run.faults, run.letters, o.graceMs));
  if (o.lossEstimated)
    for (const l of sinks) {
      if (l.overReported > 0)
        run.note(`sink ${l.sink}: ${l.overReported} counted lost beyond what is missing (the estimate after an expiry)`);
      l.overReported = 0;
    }
  // The table's "lost" column: what no sink accounted for (reported losses are not lost).
  run.lostShown = sinks.reduce((n, l) => n + l.lostSilently, 0);
  for (const l of sinks) {
    const bad = nonZero(l);
    run.check(
      `sink ${l.sink}: each event handled XOR dead-lettered XOR reported lost, nothing out of order`,
      bad.length === 0,
      `${l.expected} expected (${l.mode}): ${l.handled} handled, ${l.deadLettered} dead-lettered, ${l.lostById} reported lost by ID + ${l.lostByCount} by count; ${l.duplicates} duplicates, ${l.faultExplained} explained by a fault${bad.length > 0 ? `; ${bad.join('; ')}` : ''}`,
    );
  }
  const readers = o.readers.map((r) => readerLedger(run.oracle, r));
  for (const r of readers) {
    run.check(
      `reader ${r.slot}: delivered + reported lost = added, once each, in order`,
      r.diff === 0 && r.repeated === 0 && r.outOfOrder === 0,
      `${r.delivered} delivered + ${r.lost ?? 'no reader.counters (0)'} lost vs ${r.added} added (${r.diff >= 0 ? '+' : ''}${r.diff}); ${r.missing} not delivered, ${r.repeated} repeated, ${r.outOfOrder} out of order`,
    );
  }
  const adds = addLedger(run.oracle, entries ?? []);
  if (o.scan)
    run.check(
      'adds stored in the order each producer issued them, one entry each',
      entries !== undefined && adds.outOfOrder === 0 && adds.doubleStored === 0,
      `${adds.issued} adds issued (${adds.resolved} resolved, ${adds.failed} failed), ${adds.scanned} entries scanned: ${adds.outOfOrder} out of order, ${adds.doubleStored} stored twice${adds.examples.length > 0 ? ` (${adds.examples.join('; ')})` : ''}${entries === undefined ? '; the stream could not be scanned' : ''}`,
    );
  const deleted = deletedOf.get(run);
  if (deleted && deleted.size > 0) {
    const lostIds = new Set(run.oracle.marks.filter((m) => m.kind === 'lost').map((m) => m.id));
    const count = (state: string, f: (id: string) => boolean) => [...deleted].filter(([id, s]) => s === state && f(id)).length;
    const states = ['unread', 'pending'].map(
      (st) =>
        `${count(st, () => true)} ${st}: ${count(st, (id) => run.oracle.handled.has(id))} handled, ${count(st, (id) => lostIds.has(id))} reported lost by ID`,
    );
    run.note(`XDEL: ${states.join('; ')}`);
  }
  return { sinks, readers, adds };
}

/** True when every expected event is handled, dead-lettered or reported lost by ID in `sink`. */
export function sinkDone(run: Run, sink: string): boolean {
  const done = new Set<string>();
  for (const d of run.oracle.deliveries) if (d.sink === sink && !d.fail) done.add(d.id);
  for (const m of run.oracle.marks) if (m.w.config.sink === sink && m.w.config.mode !== 'reader') done.add(m.id);
  for (const l of run.letters.values()) if (l.sourceSink === sink) done.add(l.sourceId);
  for (const id of run.oracle.expected()) if (!done.has(id)) return false;
  return true;
}

/** True when the group read the whole stream (or the key is gone) and nothing is pending. */
async function groupIdle(run: Run, sink: string): Promise<boolean> {
  if (Number(await run.admin.call(['EXISTS', run.key])) === 0) return true;
  return (await run.admin.caughtUp(run.key, sink)) && (await run.admin.pendingCount(run.key, sink)) === 0;
}

/**
 * Waits until every sink accounted for every event by ID, or until every
 * group is idle (read to the end, nothing pending) and no consumer reported
 * anything for a while (losses reported only as a count, or never); then
 * lets buffered events and late redeliveries show for `settleMs`.
 */
export async function settle(run: Run, sinks: string[], timeoutMs: number, settleMs: number): Promise<void> {
  run.phase('run');
  const activity = () => run.oracle.deliveries.length + run.oracle.marks.length + run.oracle.lostCounts.length;
  let quiet: { since: number; seen: number } | undefined;
  const ok = await waitUntil(
    async () => {
      if (sinks.every((s) => sinkDone(run, s))) return true;
      const idle = (await Promise.all(sinks.map((s) => groupIdle(run, s)))).every(Boolean);
      const seen = activity();
      if (!idle || quiet?.seen !== seen) quiet = idle ? { since: Date.now(), seen } : undefined;
      return quiet !== undefined && Date.now() - quiet.since >= 1500;
    },
    timeoutMs,
    // Each check walks every delivery: less often for big runs (the soak).
    run.oracle.deliveries.length > 50_000 ? 500 : 50,
  );
  if (!ok) run.note(`not settled after ${timeoutMs} ms: groups still reading or events pending`);
  await pause(settleMs);
  run.phase('drain');
}
