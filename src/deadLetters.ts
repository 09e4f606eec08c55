import { evalScript } from './internal/driver.js';
import { idTime } from './internal/ids.js';
import { FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC, streamKey } from './internal/keys.js';
import { toPulseError } from './internal/redisErrors.js';
import { entries, type RawEntry, str } from './internal/replies.js';
import { replayDead } from './internal/scripts.js';
import { checkId, checkInt, checkName } from './internal/validate.js';
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
  deadLetterStream?: string;
}

/** Options of {@link readDeadLetters}. */
export interface ReadDeadLettersOptions extends DeadLetterOptions {
  /** Most dead letters returned. @defaultValue 100 */
  count?: number;
  /** Only dead letters after this dead-letter entry ID (for paging). @defaultValue from the oldest */
  after?: string;
  /** Only these dead-letter entry IDs (those not found are left out); `count` and `after` are ignored. @defaultValue all */
  ids?: string[];
}

/** Options of {@link replayDeadLetters}. */
export interface ReplayDeadLettersOptions extends DeadLetterOptions {
  /** Replay only these dead-letter entry IDs. @defaultValue every dead letter of `stream` */
  ids?: string[];
  /** Replay only those a given sink gave up on. @defaultValue any sink */
  sink?: string;
}

function deadKeyOf(stream: Stream, options?: DeadLetterOptions): string {
  const name =
    options?.deadLetterStream === undefined ? `${stream.name}:dead` : checkName('deadLetterStream', options.deadLetterStream);
  return streamKey(name);
}

/** Reads dead letters of `stream`, oldest first. */
export async function readDeadLetters(stream: Stream, options?: ReadDeadLettersOptions): Promise<DeadLetter[]> {
  const key = deadKeyOf(stream, options);
  const ids = options?.ids?.map((id) => checkId('ids', id));
  const count = checkInt('count', options?.count, 100, 1);
  const start = options?.after === undefined ? '-' : `(${checkId('after', options.after)}`;
  try {
    if (ids) {
      const found = await Promise.all(ids.map((id) => stream.driver.send(['XRANGE', key, id, id], key)));
      return found.flatMap((reply) => entries(reply).map(toDeadLetter));
    }
    return entries(await stream.driver.send(['XRANGE', key, start, '+', 'COUNT', count], key)).map(toDeadLetter);
  } catch (err) {
    throw toPulseError(err, `read dead letters of ${stream.name}`);
  }
}

function toDeadLetter([id, fields]: RawEntry): DeadLetter {
  const f = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set((fields[i] as Buffer).toString('utf8'), fields[i + 1] as Buffer);
  const topic = f.get(FIELD_TOPIC);
  return {
    id,
    eventName: str(f.get(FIELD_NAME)),
    topic: topic && topic.length > 0 ? topic.toString('utf8') : undefined,
    payload: f.get(FIELD_PAYLOAD) ?? Buffer.alloc(0),
    sourceStream: str(f.get('source_stream')),
    sourceSink: str(f.get('source_sink')),
    sourceId: str(f.get('source_id')),
    deliveries: Number(str(f.get('deliveries')) || 0),
    reason: str(f.get('reason')),
    deadAt: new Date(idTime(id)),
  };
}

/**
 * Adds dead letters back to `stream` (as new events with their name, payload
 * and topic) and deletes them from the dead-letter stream. On one Redis node
 * each move is one atomic step; on a cluster it is add, then delete, so a
 * failure in between can replay an event twice but never loses it.
 * The events are new entries: every sink and reader of `stream` receives
 * them, and `stream.maxLen` applies (use a `Stream` with `maxLen: 0` to
 * replay without trimming). Resolves to the new event IDs.
 */
export async function replayDeadLetters(stream: Stream, options?: ReplayDeadLettersOptions): Promise<string[]> {
  const key = deadKeyOf(stream, options);
  const wanted = options?.ids?.map((id) => checkId('ids', id));
  const sink = options?.sink;
  const replayed: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = wanted
      ? await readDeadLetters(stream, { ...options, ids: wanted })
      : await readDeadLetters(stream, after === undefined ? { ...options, count: 500 } : { ...options, count: 500, after });
    const ids = page
      .filter((d) => d.sourceStream === stream.name && (sink === undefined || d.sourceSink === sink))
      .map((d) => d.id);
    if (ids.length > 0) {
      try {
        if (stream.driver.isCluster) {
          for (const id of ids) {
            const d = page.find((x) => x.id === id) as DeadLetter;
            const newId = await stream.add(d.eventName, d.payload, d.topic === undefined ? undefined : { topic: d.topic });
            if (newId !== undefined) replayed.push(newId);
            await stream.driver.send(['XDEL', key, id], key);
          }
        } else {
          const out = (await evalScript(stream.driver, replayDead, [key, stream.key], [stream.maxLen, ...ids])) as unknown[];
          for (const r of out) if (r) replayed.push(str(r));
        }
      } catch (err) {
        throw toPulseError(err, `replay dead letters of ${stream.name}`);
      }
    }
    if (wanted || page.length < 500) return replayed;
    after = page[page.length - 1]?.id;
  }
}
