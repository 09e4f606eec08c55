import { InvalidArgumentError } from './errors.js';
import type { EventMap } from './event.js';
import { checkOpen } from './internal/driver.js';
import { HEADER_PREFIX, NO_HEADERS, setHeader } from './internal/headers.js';
import { compareIds, idTime } from './internal/ids.js';
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC, streamKey } from './internal/keys.js';
import { checkOptionNames, names } from './internal/optionNames.js';
import { toPulseError } from './internal/redisErrors.js';
import { LAST_ID, LetterMover, type PagedLetter, readPage } from './internal/replayMoves.js';
import { entries, type RawEntry, str } from './internal/replies.js';
import { slotOf } from './internal/slot.js';
import type { StreamHandle } from './internal/streamHandle.js';
import { canonicalId, checkInt, checkName, checkOptionsObject } from './internal/validate.js';
import type { Stream } from './stream.js';

/** An event a sink gave up on after `maxDeliveries`, as stored in the dead-letter stream. */
export interface DeadLetter {
  /** ID of the entry in the dead-letter stream. */
  readonly id: string;
  /** Event name (`n`). */
  readonly eventName: string;
  /** Topic (`t`), if any. */
  readonly topic: string | undefined;
  /** The exact bytes of the original event (`p`). */
  readonly payload: Buffer;
  /** Headers of the original event (`h.*`); an empty object when it had none. */
  readonly headers: Readonly<Record<string, string>>;
  /** Stream the event came from. */
  readonly sourceStream: string;
  /** Sink that gave up on it. */
  readonly sourceSink: string;
  /** ID of the event in its source stream. */
  readonly sourceId: string;
  /** Deliveries before it was dead-lettered. */
  readonly deliveries: number;
  /** Why it was dead-lettered. */
  readonly reason: string;
  /** When it was dead-lettered. */
  readonly deadAt: Date;
}

/** Options of {@link readDeadLetters} and {@link replayDeadLetters}. */
export interface DeadLetterOptions {
  /** Name of the dead-letter stream. @defaultValue `<stream name>:dead` */
  deadLetterStream?: string | undefined;
}

/** Options of {@link readDeadLetters}. */
export interface ReadDeadLettersOptions extends DeadLetterOptions {
  /** Most dead letters returned. @defaultValue 100 */
  count?: number | undefined;
  /** Only dead letters after this dead-letter entry ID (for paging). @defaultValue from the oldest */
  after?: string | undefined;
  /** Only these dead-letter entry IDs (those not found are left out); `count` and `after` are ignored. @defaultValue all */
  ids?: readonly string[] | undefined;
}

/** Options of {@link replayDeadLetters}. */
export interface ReplayDeadLettersOptions extends DeadLetterOptions {
  /** Replay only these dead-letter entry IDs. @defaultValue every dead letter of `stream` */
  ids?: readonly string[] | undefined;
  /** Replay only those a given sink gave up on. @defaultValue any sink */
  sink?: string | undefined;
}

const READ_OPTIONS = names<ReadDeadLettersOptions>()(['deadLetterStream', 'count', 'after', 'ids']);
const REPLAY_OPTIONS = names<ReplayDeadLettersOptions>()(['deadLetterStream', 'ids', 'sink']);

/**
 * The checks `readDeadLetters` and `replayDeadLetters` make before any Redis
 * call: a Stream, options that are an object, and the IDs given as an array
 * of entry IDs (a JavaScript caller's string would otherwise fail as a
 * TypeError, or as a Redis error wrapped in a PulseError).
 */
function checkArgs(fn: string, stream: unknown, options: { ids?: unknown } | undefined): string[] | undefined {
  const s = stream as Partial<StreamHandle> | null;
  if (typeof stream !== 'object' || s === null || typeof s.key !== 'string' || typeof s.driver !== 'object') {
    throw new InvalidArgumentError(`${fn} takes a Stream, got ${stream === null ? 'null' : typeof stream}`);
  }
  checkOptionsObject(fn, options, ', e.g. { deadLetterStream }');
  checkOptionNames(fn, options, fn === 'readDeadLetters' ? READ_OPTIONS : REPLAY_OPTIONS);
  const ids = options?.ids;
  if (ids === undefined) return undefined;
  if (!Array.isArray(ids)) throw new InvalidArgumentError(`${fn}: ids must be an array of dead-letter entry IDs`);
  // One form: `5`, `5-0` and `05-0` name one letter (XRANGE 5 5 would read every letter of millisecond 5).
  return ids.map((id) => canonicalId('ids', id));
}

function deadStreamOf(stream: StreamHandle, options?: DeadLetterOptions): { name: string; key: string } {
  const name =
    options?.deadLetterStream === undefined ? `${stream.name}:dead` : checkName('deadLetterStream', options.deadLetterStream);
  return { name, key: streamKey(name) };
}

/**
 * Reads dead letters of `stream`, oldest first.
 * @throws InvalidArgumentError for a `stream` that is not a Stream or a bad option, before any Redis call.
 * @throws ClosedError when the stream's client was closed or never connected, before any Redis call.
 */
export async function readDeadLetters<Events extends EventMap>(
  stream: Stream<Events>,
  options?: ReadDeadLettersOptions,
): Promise<DeadLetter[]> {
  const ids = checkArgs('readDeadLetters', stream, options);
  const { key } = deadStreamOf(stream, options);
  const count = checkInt('count', options?.count, 100, 1);
  const after = options?.after === undefined ? undefined : canonicalId('after', options.after);
  // Nothing comes after the largest ID (Redis refuses an exclusive start there): a replay that paged up to it is done.
  if (after === LAST_ID && !ids) return [];
  const start = after === undefined ? '-' : `(${after}`;
  checkOpen(stream.driver, `read dead letters of ${stream.name}`);
  try {
    if (ids) {
      // Oldest first and once each, as without `ids` (a replay adds in this order).
      const sorted = [...new Set(ids)].sort(compareIds);
      const found = await Promise.all(sorted.map((id) => stream.driver.send(['XRANGE', key, id, id], key)));
      return found.flatMap((reply) => entries(reply).map(toDeadLetter));
    }
    return entries(await stream.driver.send(['XRANGE', key, start, '+', 'COUNT', count], key)).map(toDeadLetter);
  } catch (err) {
    throw toPulseError(err, `read dead letters of ${stream.name}`);
  }
}

function toDeadLetter([id, fields]: RawEntry): DeadLetter {
  const f = new Map<string, Buffer>();
  let headers: Record<string, string> | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const k = (fields[i] as Buffer).toString('utf8');
    if (k.length > HEADER_PREFIX.length && k.startsWith(HEADER_PREFIX)) {
      headers ??= {};
      setHeader(headers, k.slice(HEADER_PREFIX.length), str(fields[i + 1]));
    } else f.set(k, fields[i + 1] as Buffer);
  }
  const topic = f.get(FIELD_TOPIC);
  return {
    id,
    eventName: str(f.get(FIELD_NAME)),
    topic: topic && topic.length > 0 ? topic.toString('utf8') : undefined,
    payload: f.get(FIELD_PAYLOAD) ?? Buffer.alloc(0),
    headers: headers ? Object.freeze(headers) : NO_HEADERS,
    sourceStream: str(f.get('source_stream')),
    sourceSink: str(f.get('source_sink')),
    sourceId: str(f.get('source_id')),
    deliveries: Number(str(f.get('deliveries')) || 0),
    reason: str(f.get('reason')),
    deadAt: new Date(idTime(id)),
  };
}

/**
 * Adds dead letters back to `stream` (as new events with their name, payload,
 * topic and headers) and deletes them from the dead-letter stream, each
 * exactly once even when replays overlap (two operators, a retried job).
 * The events are new entries: every sink and reader of `stream` receives
 * them; `stream.maxLen` trims (under 'limits' retention; under 'interest'
 * the replay does not trim, the stream's next adds do) and `stream.ttlMs`
 * applies exactly as for `stream.add` (use a `Stream` with `maxLen: 0` to
 * replay without trimming).
 * Resolves to the new event IDs, in dead-letter order; letters another
 * replay moves meanwhile are left to it and not in the result.
 * A letter with no event field (`n`, `p`, `t`, `h.*`: another producer's
 * entry with fields of its own, dead-lettered by a typed `process()`) goes
 * back as the event the sink saw: name '' and an empty payload.
 * The replay reads the letters' IDs and sources, never their payloads: on
 * one node the moves happen inside Redis, and across cluster slots they take
 * the letters in batches of at most 4 MB of events (a bigger letter alone).
 * A letter with more fields than a script's call takes (about 3,900 pairs)
 * is moved by the client with the cluster steps below, on one node too.
 *
 * On one Redis node (or when both streams share a cluster slot) each move is
 * one atomic step. On a cluster the two streams live in different slots, so
 * a move takes steps, each atomic in one slot: the replayer claims the letter
 * in the dead-letter stream's slot (for 30 s; the letter stays there), adds
 * it to `stream` unless a record in the stream's slot says it was added
 * already (the record is written in the same step), deletes it, and drops the
 * record. So a letter is never lost: it is in the dead-letter stream until it
 * was added. A replayer that crashes or fails midway leaves its letters there,
 * claimed for at most 30 s; the next replay after that finishes the move
 * without adding a letter twice, unless `stream` was destroyed or expired in
 * between (the records go with it: the letter is added to the new stream).
 * An add that arrives more than 20 s after its claim (by the two nodes'
 * clocks) is refused and the letters are claimed again, so a duplicate needs
 * both a replayer frozen for over 30 s between its claim and its add and the
 * stream's node's clock more than 10 s behind the dead-letter stream's.
 * @throws InvalidArgumentError for a `stream` that is not a Stream or a bad
 *   option (`sink` must be a sink name), before any Redis call.
 * A connection lost before a move's answer rejects the replay (the move
 * is not sent again): what it moved is in `stream`, what it did not still in
 * the dead-letter stream, where a replay again finishes the job.
 * @throws ClosedError when the stream's client was closed or never connected, before any Redis call.
 */
export async function replayDeadLetters<Events extends EventMap>(
  stream: Stream<Events>,
  options?: ReplayDeadLettersOptions,
): Promise<string[]> {
  const wanted = checkArgs('replayDeadLetters', stream, options);
  const { name: deadName, key } = deadStreamOf(stream, options);
  // A sink name no sink can have ('', 'a b') would match no letter: replaying nothing, silently.
  const sink = options?.sink === undefined ? undefined : checkName('sink', options.sink);
  checkOpen(stream.driver, `read dead letters of ${stream.name}`);
  const atomic = !stream.driver.isCluster || slotOf(key) === slotOf(stream.key);
  const mover = new LetterMover({ stream, maxLen: replayMaxLen(stream), deadName, deadKey: key, atomic });
  const replayed: string[] = [];
  // The pages name each letter and its source, not its payload: the moves run
  // in Redis (one node) or claim bounded batches (cluster), so a replay of
  // big letters never holds them all (outside review AI).
  const moveMine = async (page: readonly PagedLetter[]): Promise<void> => {
    const mine = page.filter((d) => d.sourceStream === stream.name && (sink === undefined || d.sourceSink === sink));
    if (mine.length > 0) replayed.push(...(await mover.move(mine)));
  };
  try {
    if (wanted) {
      // Oldest first and once each, as readDeadLetters returns them.
      const sorted = [...new Set(wanted)].sort(compareIds);
      for (let i = 0; i < sorted.length; i += PAGE) {
        await moveMine(await readPage(stream, key, ['ids', ...sorted.slice(i, i + PAGE)]));
      }
    } else {
      let start = '-';
      for (;;) {
        const page = await readPage(stream, key, ['range', start, PAGE]);
        await moveMine(page);
        const last = page[page.length - 1]?.id;
        // Nothing comes after the largest ID (Redis refuses an exclusive start there).
        if (page.length < PAGE || last === undefined || last === LAST_ID) break;
        start = `(${last}`;
      }
    }
  } catch (err) {
    throw toPulseError(err, `replay dead letters of ${stream.name}`);
  } finally {
    mover.close();
  }
  // The replay may have created the stream: Go readers need its record (goLifecycle.ts).
  if (replayed.length > 0) await stream.goLifecycle.ensure();
  return replayed;
}

/** Letters a replay looks at per page (IDs and sources only). */
const PAGE = 500;

/**
 * The `MAXLEN ~` of a replay's adds: the stream's, under 'limits'
 * retention. Under 'interest' none: `MAXLEN` removes the oldest entries,
 * read or not, and 200 of 300 events a sink had not read went with one
 * replayed letter (outside review AD). The stream's next adds trim it as
 * 'interest' does (it may pass maxLen by a little meanwhile, as it may with
 * lone adds).
 */
function replayMaxLen(stream: Pick<Stream<EventMap>, 'retention' | 'maxLen'>): number {
  return stream.retention === 'interest' ? 0 : stream.maxLen;
}
