/**
 * What the inspection commands read from Redis about pulse streams: the
 * streams (`SCAN ... TYPE stream`, `XINFO STREAM` in a script that drops the entries), their sinks (consumer
 * groups: `XINFO GROUPS/CONSUMERS`, plus the library's keep-alive records)
 * and the pending entries of a sink (`XPENDING`). On a Redis Cluster the
 * listing scans every master; every other command names its key, so the
 * cluster client routes it to the key's master.
 */
import type { Redis } from 'ioredis';
import { sinkInstancesKey, sinkKeys, streamKey } from 'pulse-streaming/keys';
import { type CliRedis, isCluster, serversOf } from './clients.js';
import { CliError, errorMessage } from './errors.js';
import { displayText, idTime, isoTime } from './format.js';
import { list, num, optionalNum, record, text } from './replies.js';
import { STREAM_PREFIX } from './streamChecks.js';

const PREFIX = STREAM_PREFIX;

/** One stream as listed by `streams`. */
export interface StreamSummary {
  name: string;
  key: string;
  length: number;
  firstId: string | null;
  /** Time of the first ID, ISO 8601; null when there is none or it is past what a date holds. */
  firstTime: string | null;
  lastId: string | null;
  /** Time of the last ID, ISO 8601; null when there is none or it is past what a date holds. */
  lastTime: string | null;
  /** Time to live in ms, or null when the key does not expire. */
  ttlMs: number | null;
  sinks: string[];
  /**
   * True when this stream is itself a dead-letter stream (`<name>:dead`). Named
   * `deadLetters` before: beside `deadLetterCount` a script read it as "has
   * dead letters" (outside trial).
   */
  isDeadLetterStream: boolean;
}

/** One consumer of a sink. */
export interface ConsumerInfo {
  name: string;
  pending: number;
  /** Time since the consumer last read or claimed, per Redis. */
  idleMs: number;
  /** Time since the library's last keep-alive for this consumer, if it keeps one. */
  keepAliveAgeMs: number | null;
}

/** One sink (consumer group) of a stream. */
export interface SinkInfo {
  name: string;
  pending: number;
  /** Entries not yet delivered to the sink, or null when Redis cannot tell. */
  lag: number | null;
  lastDeliveredId: string;
  consumers: ConsumerInfo[];
}

/** A stream with its sinks, as shown by `stream <name>`. */
export interface StreamDetails extends StreamSummary {
  sinkDetails: SinkInfo[];
}

/**
 * The idle time the library gives a nacked event (its `NACKED_IDLE_MS`, the
 * longest grace period: internal/sinkDue.ts); no event is idle that long
 * otherwise (24.8 days).
 */
export const NACKED_IDLE_MS = 2 ** 31 - 1;

/** One pending entry of a sink. */
export interface PendingEntry {
  id: string;
  consumer: string;
  /**
   * Since its last delivery, or since its nack: the library sets a nacked
   * event's idle time to {@link NACKED_IDLE_MS} (so that any instance may take
   * it once due), which is taken off here (Redis showed about 24.8 days).
   */
  idleMs: number;
  /** True when the event was nacked (its idle time says so), due or not. */
  nacked: boolean;
  deliveries: number;
  /** A nacked event waiting for its delay: ms until it is redelivered (0: due now). Absent otherwise. */
  dueInMs?: number;
}

/** The pending entries of a sink, as shown by `pending`. */
export interface PendingReport {
  stream: string;
  sink: string;
  total: number;
  firstId: string | null;
  lastId: string | null;
  consumers: { name: string; pending: number }[];
  entries: PendingEntry[];
}

// null past what a Date holds (an ID's time can be up to 2^64 - 1): the ID still says it.
const isoOfId = (id: string | null): string | null => (id === null ? null : isoTime(idTime(id)));

/**
 * Names of every pulse stream, sorted (`SCAN MATCH pulse:stream:* TYPE stream`
 * on the server, or on every master of a cluster).
 */
export async function listStreamNames(client: CliRedis): Promise<string[]> {
  const found = await Promise.all(serversOf(client).map(scanStreams));
  return [...new Set(found.flat())].sort();
}

async function scanStreams(server: Redis): Promise<string[]> {
  const names: string[] = [];
  let cursor = '0';
  do {
    const reply = list(await server.call('SCAN', cursor, 'MATCH', `${PREFIX}*`, 'TYPE', 'stream', 'COUNT', '1000'));
    cursor = text(reply[0]);
    for (const k of list(reply[1])) names.push(text(k).slice(PREFIX.length));
  } while (cursor !== '0');
  return names;
}

/**
 * `XINFO STREAM` without the entries: it returns the first and last entries
 * whole, 2 MB for a stream of 1 MB payloads, so the server keeps only their
 * IDs and the figures. Keyed, so a cluster client sends it to the key's master.
 */
const STREAM_HEAD = `
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local out = {}
for i = 1, #info, 2 do
  local k, v = info[i], info[i + 1]
  if k == 'first-entry' or k == 'last-entry' then
    if type(v) == 'table' then v = v[1] else v = false end
    out[#out + 1] = k
    out[#out + 1] = v
  elseif k == 'length' or k == 'entries-added' then
    out[#out + 1] = k
    out[#out + 1] = v
  end
end
out[#out + 1] = 'ttl'
out[#out + 1] = redis.call('PTTL', KEYS[1])
return out`;

/** A stream's figures that `XINFO STREAM` and `PTTL` give, without its entries. */
export interface StreamHead {
  length: number;
  /** Every entry ever added (a counter); null before Redis 7. */
  entriesAdded: number | null;
  firstId: string | null;
  lastId: string | null;
  /** Time to live in ms, or null when the key does not expire. */
  ttlMs: number | null;
}

/**
 * Length, first and last IDs and TTL of the stream at `key`, in one round
 * trip that carries no entry.
 * @throws the Redis error (`no such key`) when the key does not exist.
 */
export async function streamHead(client: CliRedis, key: string): Promise<StreamHead> {
  const info = record(await client.call('EVAL', STREAM_HEAD, '1', key));
  // A Lua false comes back as nil; an empty stream has no first or last entry.
  const id = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : text(v));
  const ttl = num(info.ttl);
  return {
    length: num(info.length),
    entriesAdded: optionalNum(info['entries-added']) ?? null,
    firstId: id(info['first-entry']),
    lastId: id(info['last-entry']),
    ttlMs: ttl >= 0 ? ttl : null,
  };
}

/**
 * True for the error of reading a stream that is gone: deleted (`no such key`) or
 * replaced by a key of another type (`WRONGTYPE`) since it was listed. A listing
 * of many streams leaves it out, as `SCAN ... TYPE stream` would now.
 */
export function streamGone(err: unknown): boolean {
  return /no such key|WRONGTYPE/i.test(errorMessage(err));
}

/** Length, first and last entries, TTL and sink names of a stream; undefined when it vanished meanwhile. */
export async function streamSummary(client: CliRedis, name: string): Promise<StreamSummary | undefined> {
  const key = streamKey(name);
  let head: StreamHead;
  let groups: unknown[];
  try {
    [head, groups] = await Promise.all([streamHead(client, key), client.call('XINFO', 'GROUPS', key).then(list)]);
  } catch (err) {
    if (streamGone(err)) return undefined;
    throw err;
  }
  const { firstId, lastId } = head;
  return {
    name,
    key,
    length: head.length,
    firstId,
    firstTime: isoOfId(firstId),
    lastId,
    lastTime: isoOfId(lastId),
    ttlMs: head.ttlMs,
    sinks: groups.map((g) => text(record(g).name)).sort(),
    isDeadLetterStream: name.endsWith(':dead'),
  };
}

/**
 * Member -> score of a `ZRANGE ... WITHSCORES` reply: flat `[member, score, ...]`
 * (RESP2) or `[[member, score], ...]` pairs (RESP3, ioredis 6's default).
 */
function scores(reply: unknown[]): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < reply.length; ) {
    const item = reply[i];
    if (Array.isArray(item)) {
      out.set(text(item[0]), num(item[1]));
      i += 1;
    } else {
      out.set(text(item), num(reply[i + 1]));
      i += 2;
    }
  }
  return out;
}

const TIME_SCRIPT = "return redis.call('TIME')";

/**
 * Time in ms of the server that holds `key`, so keep-alive ages compare two
 * times of one clock. On a cluster a keyed script runs on the key's master.
 */
async function serverNow(client: CliRedis, key: string): Promise<number> {
  const reply = isCluster(client) ? await client.call('EVAL', TIME_SCRIPT, '1', key) : await client.call('TIME');
  const [s, us] = list(reply);
  return num(s) * 1000 + Math.floor(num(us) / 1000);
}

/** The sinks of a stream with their consumers, pending counts, lag and idle times. */
export async function sinkInfos(client: CliRedis, name: string): Promise<SinkInfo[]> {
  const key = streamKey(name);
  const groups = list(await client.call('XINFO', 'GROUPS', key)).map(record);
  const now = await serverNow(client, key);
  const sinks = await Promise.all(
    groups.map(async (g): Promise<SinkInfo> => {
      const sink = text(g.name);
      // Liveness is sink-wide (its own slot, so its own server's clock); a consumer's
      // entry of this stream is only refreshed when it sweeps the stream: the newer counts.
      const instances = sinkInstancesKey(sink);
      const [consumers, keepAlives, beats, beatNow] = await Promise.all([
        client.call('XINFO', 'CONSUMERS', key, sink).then((r) => list(r).map(record)),
        client.call('ZRANGE', sinkKeys(name, sink).consumers, '0', '-1', 'WITHSCORES').then(list),
        client.call('ZRANGE', instances, '0', '-1', 'WITHSCORES').then(list),
        serverNow(client, instances),
      ]);
      const lastSeen = scores(keepAlives);
      for (const [consumer, at] of scores(beats)) {
        const seen = lastSeen.get(consumer);
        // As a time of this stream's server: its age on the sink-wide key's server.
        const asHere = now - (beatNow - at);
        if (seen === undefined || asHere > seen) lastSeen.set(consumer, asHere);
      }
      return {
        name: sink,
        pending: num(g.pending),
        lag: optionalNum(g.lag) ?? null,
        lastDeliveredId: text(g['last-delivered-id']),
        consumers: consumers
          .map((c) => {
            const consumer = text(c.name);
            const seen = lastSeen.get(consumer);
            return {
              name: consumer,
              pending: num(c.pending),
              idleMs: num(c.idle),
              keepAliveAgeMs: seen === undefined ? null : Math.max(0, now - seen),
            };
          })
          .sort((a, b) => a.name.localeCompare(b.name)),
      };
    }),
  );
  return sinks.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Names for a message: `a, b, c`, or `none`. Each goes through displayText: the names
 * come from Redis (sink and consumer names anyone with write access chose), and the
 * message reaches a terminal.
 */
export function nameList(list: readonly string[]): string {
  if (list.length === 0) return 'none';
  const shown = list.slice(0, 10).map(displayText).join(', ');
  return list.length <= 10 ? shown : `${shown} and ${list.length - 10} more`;
}

/**
 * Fails when the sink has no consumer named `consumer`: XPENDING would just
 * report nothing, and a typo would look like "no pending events".
 * @throws CliError naming the consumers it has.
 */
async function requireConsumer(client: CliRedis, name: string, sink: string, consumer: string): Promise<void> {
  const consumers = list(await client.call('XINFO', 'CONSUMERS', streamKey(name), sink)).map((c) => text(record(c).name));
  if (consumers.includes(consumer)) return;
  throw new CliError(
    `sink ${JSON.stringify(sink)} of stream ${JSON.stringify(name)} has no consumer ${JSON.stringify(consumer)} (its consumers: ${nameList(consumers.sort())})`,
  );
}

/** The sink (consumer group) names of a stream; empty when the stream does not exist. */
export async function sinkNames(client: CliRedis, name: string): Promise<string[]> {
  try {
    return list(await client.call('XINFO', 'GROUPS', streamKey(name)))
      .map((g) => text(record(g).name))
      .sort();
  } catch (err) {
    if (/no such key/i.test(errorMessage(err))) return [];
    throw err;
  }
}

/**
 * The pending entries of a sink (`XPENDING`), oldest first, at most `count` of
 * them, optionally of one consumer, and with `after` only those whose ID is
 * greater (the next page of a list that ended at `after`).
 * @throws CliError when the stream has no such sink.
 */
export async function pendingReport(
  client: CliRedis,
  name: string,
  sink: string,
  options: { count: number; consumer?: string; after?: string },
): Promise<PendingReport> {
  const key = streamKey(name);
  let summary: unknown[];
  try {
    summary = list(await client.call('XPENDING', key, sink));
  } catch (err) {
    if (/NOGROUP/.test(errorMessage(err)))
      throw new CliError(`stream ${JSON.stringify(name)} has no sink ${JSON.stringify(sink)}`);
    throw err;
  }
  if (options.consumer !== undefined) await requireConsumer(client, name, sink, options.consumer);
  // An exclusive start (`(id`, Redis 6.2): an ID acked since the last page still ends it.
  const start = options.after === undefined ? '-' : `(${options.after}`;
  const range: string[] = [key, sink, start, '+', String(options.count)];
  if (options.consumer !== undefined) range.push(options.consumer);
  const details = list(await client.call('XPENDING', ...range));
  const due = await dueTimes(
    client,
    name,
    sink,
    details.map((d) => text(list(d)[0])),
  );
  return {
    stream: name,
    sink,
    total: num(summary[0]),
    firstId: summary[1] === null || summary[1] === undefined ? null : text(summary[1]),
    lastId: summary[2] === null || summary[2] === undefined ? null : text(summary[2]),
    consumers: list(summary[3]).map((c) => {
      const [n, p] = list(c);
      return { name: text(n), pending: num(p) };
    }),
    entries: details.map((d) => {
      const [id, consumer, idle, deliveries] = list(d);
      const idleMs = num(idle);
      const nacked = idleMs >= NACKED_IDLE_MS;
      const entry: PendingEntry = {
        id: text(id),
        consumer: text(consumer),
        idleMs: nacked ? idleMs - NACKED_IDLE_MS : idleMs,
        nacked,
        deliveries: num(deliveries),
      };
      const dueInMs = due.get(entry.id);
      if (dueInMs !== undefined) entry.dueInMs = dueInMs;
      return entry;
    }),
  };
}

/**
 * When each of `ids` that a nack delayed is due, in ms from now (Redis's
 * clock), from the sink's delays set: its idle time says nothing then (the
 * library sets it very high so that any instance may take the event once due).
 */
async function dueTimes(client: CliRedis, name: string, sink: string, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const key = sinkKeys(name, sink).delays;
  const [scores, time] = await Promise.all([client.call('ZMSCORE', key, ...ids).then(list), client.call('TIME').then(list)]);
  const now = num(time[0]) * 1000 + Math.floor(num(time[1]) / 1000);
  ids.forEach((id, i) => {
    const score = scores[i];
    if (score !== null && score !== undefined) out.set(id, Math.max(0, Number(text(score)) - now));
  });
  return out;
}
