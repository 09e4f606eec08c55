/**
 * What the dashboard reads from Redis: figures of many streams at once (the
 * overview page and `/metrics`), with `XINFO STREAM` (without its entries) and `XINFO GROUPS` per
 * stream and the length of its dead-letter stream. Stream names come from the
 * CLI's listing (`SCAN ... TYPE stream` on every master), cached (see
 * {@link StreamNames}) so a page of 50 out of 10,000 streams does not scan
 * the keyspace on every refresh.
 */
import { streamKey } from 'pulse-streaming/keys';
import type { CliRedis } from '../clients.js';
import { deadLetterStreamName } from '../deadLetters.js';
import { listStreamNames, type StreamHead, streamGone, streamHead } from '../inspect.js';
import { list, num, optionalNum, record, text } from '../replies.js';
import { LIMITS } from './limits.js';

/** One sink (consumer group) as the overview and `/metrics` show it. */
export interface SinkFigures {
  name: string;
  pending: number;
  /** Entries not yet delivered to the sink; null when Redis cannot tell (`XINFO GROUPS` lag is nil). */
  lag: number | null;
  consumers: number;
  lastDeliveredId: string;
}

/** One stream's figures. */
export interface StreamFigures {
  name: string;
  length: number;
  /** `entries-added` of `XINFO STREAM`: every entry ever added (a counter); null before Redis 7. */
  entriesAdded: number | null;
  firstId: string | null;
  lastId: string | null;
  /** Time to live of the stream key in ms; null when it does not expire. */
  ttlMs: number | null;
  /** Length of `<name>:dead` (0 when absent). */
  deadLetters: number;
  /** True when this stream is itself a dead-letter stream (`<source>:dead`). */
  isDeadLetterStream: boolean;
  sinks: SinkFigures[];
}

/** How many streams are read at once: bounds the commands in flight on a 10,000-stream keyspace. */
const CONCURRENCY = 256;
/**
 * Stream names of one client. A listing scans the whole keyspace (`SCAN` on
 * every master: long on a big one), so the last one is used for up to
 * `LIMITS.namesMaxAgeMs` and then listed again in the background while the
 * old one is still used; never more than one listing at a time, and a failed
 * one keeps the old names (the figures read from them say what is wrong).
 */
/** A listing in progress, with the names destroyed since it started. */
interface Listing {
  names: Promise<string[]>;
  removed: Set<string>;
}

export class StreamNames {
  #names: string[] | undefined;
  #at = 0;
  #listing: Listing | undefined;

  constructor(private readonly client: CliRedis) {}

  /** Every pulse stream name, sorted: the last listing, listed anew in the background once it is old. */
  all(): Promise<string[]> {
    if (this.#names === undefined) return this.fresh();
    if (Date.now() - this.#at > LIMITS.namesMaxAgeMs) this.fresh().catch(() => {});
    return Promise.resolve(this.#names);
  }

  /**
   * A listing started now, or the one in progress (for a scrape or a page
   * load, which must not miss a stream created a moment ago).
   */
  fresh(): Promise<string[]> {
    if (this.#listing !== undefined) return this.#listing.names;
    const removed = new Set<string>();
    const names = listStreamNames(this.client).then((all) => {
      const kept = all.filter((n) => !removed.has(n));
      if (this.#listing?.names === names) {
        this.#names = kept;
        this.#at = Date.now();
      }
      return kept;
    });
    const listing: Listing = { names, removed };
    this.#listing = listing;
    void names.then(
      () => this.#done(listing),
      () => this.#done(listing),
    );
    return names;
  }

  #done(listing: Listing): void {
    if (this.#listing === listing) this.#listing = undefined;
  }

  /** Drops a destroyed stream from the listing, and from the one in progress (which may have seen it). */
  remove(name: string): void {
    this.#names = this.#names?.filter((n) => n !== name);
    this.#listing?.removed.add(name);
  }
}

/**
 * Figures of one stream; undefined when it vanished meanwhile (deleted, or no longer a stream). With
 * `deadLetters: false` the dead-letter count is left at 0 for the caller to
 * fill in (from the figures of `<name>:dead` when it lists every stream).
 */
export async function streamFigures(
  client: CliRedis,
  name: string,
  options: { deadLetters: boolean } = { deadLetters: true },
): Promise<StreamFigures | undefined> {
  const key = streamKey(name);
  let head: StreamHead;
  let groups: Record<string, unknown>[];
  let dead: number;
  try {
    [head, groups, dead] = await Promise.all([
      streamHead(client, key),
      client.call('XINFO', 'GROUPS', key).then((r) => list(r).map(record)),
      // XLEN of a missing key is 0; of a key that is not a stream, an error we do not want to fail on.
      options.deadLetters ? client.call('XLEN', streamKey(deadLetterStreamName(name))).then(num, () => 0) : 0,
    ]);
  } catch (err) {
    if (streamGone(err)) return undefined;
    throw err;
  }
  return {
    name,
    ...head,
    deadLetters: dead,
    isDeadLetterStream: name.endsWith(':dead'),
    sinks: groups
      .map((g) => ({
        name: text(g.name),
        pending: num(g.pending),
        lag: optionalNum(g.lag) ?? null,
        consumers: num(g.consumers),
        lastDeliveredId: text(g['last-delivered-id']),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/**
 * Figures of `names` in order, at most {@link CONCURRENCY} streams read at a
 * time; vanished streams left out. With `complete` (`names` is every stream),
 * dead-letter counts come from the listed `<name>:dead` streams instead of
 * one more command per stream.
 */
export async function manyStreamFigures(client: CliRedis, names: readonly string[], complete = false): Promise<StreamFigures[]> {
  const out: (StreamFigures | undefined)[] = new Array(names.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next++;
      out[i] = await streamFigures(client, names[i] as string, { deadLetters: !complete });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, names.length) }, worker));
  const figures = out.filter((f): f is StreamFigures => f !== undefined);
  if (complete) {
    const lengths = new Map(figures.map((f) => [f.name, f.length]));
    for (const f of figures) f.deadLetters = lengths.get(deadLetterStreamName(f.name)) ?? 0;
  }
  return figures;
}

/** One page of the stream list. */
export interface StreamPage {
  /** Streams matching the search. */
  total: number;
  page: number;
  pageSize: number;
  names: string[];
}

/** The `page`-th page (from 0) of the names containing `query` (case-insensitive). */
export function pageOf(names: readonly string[], query: string, page: number, pageSize: number): StreamPage {
  const q = query.toLowerCase();
  const matching = q === '' ? names : names.filter((n) => n.toLowerCase().includes(q));
  const last = Math.max(0, Math.ceil(matching.length / pageSize) - 1);
  const p = Math.min(Math.max(0, page), last);
  return { total: matching.length, page: p, pageSize, names: matching.slice(p * pageSize, (p + 1) * pageSize) };
}
