/**
 * How `stream.add` travels (stream.ts): the description of one add for the
 * batcher (`Mergeable`), the packing of merged adds into the arguments of
 * the add script (addScripts.ts), the plain XADD of an add sent alone, and
 * the reading of the script's reply.
 */
import { ClosedError, PulseError } from '../errors.js';
import type { Retention } from '../options.js';
import { addEvents, addEventsInterest } from './addScripts.js';
import { type Mergeable, NOT_RUN } from './batcher.js';
import type { Arg } from './command.js';
import { dedupKeys, FIELD_NAME, FIELD_PAYLOAD, FIELD_TOPIC } from './keys.js';
import { errorReason, replyCode, toPulseError, wasUnsent } from './redisErrors.js';
import type { Script } from './script.js';

/** One add, validated: what `AddPath.describe` needs of it. */
export interface AddRequest {
  readonly eventName: string;
  readonly payload: Buffer | string;
  readonly topic: string | undefined;
  readonly onlyIfExists: boolean;
  /** Header fields and values, `h.<name>`, value, ... (headers.ts). */
  readonly headers: readonly string[];
  readonly dedupId: string | undefined;
}

/** The settings of a stream that shape its adds. */
export interface AddSettings {
  readonly name: string;
  readonly key: string;
  readonly maxLen: number;
  readonly ttlMs: number | undefined;
  readonly slidingTtl: boolean;
  readonly retention: Retention;
  readonly dedupWindowMs: number;
}

/**
 * Under 'interest' retention, one lone add in this many trims (a script
 * call); the others are plain XADDs. The script trims only once the stream
 * is 100 entries past maxLen anyway; with several producers the stream may
 * pass maxLen by this much per producer before one of them trims.
 */
const LONE_ADDS_PER_TRIM = 50;

/**
 * Per stream key, the lone adds of this process sent as plain XADDs (which
 * do not trim) since the last one that trimmed: counted per process, not per
 * `Stream` instance, and from a random start. A `Stream` made per request or
 * per short-lived job makes fewer than {@link LONE_ADDS_PER_TRIM} adds, and a
 * count per instance from 0 never trimmed at all (600 adds each from a new
 * instance left 600 entries over a maxLen of 10; outside review AM); a
 * process that makes only a few adds (a serverless function) trims with one
 * of them in 50 on average.
 */
const untrimmed = new Map<string, number>();

/** Stream keys {@link untrimmed} remembers; past it, it starts over (random starts again). */
const UNTRIMMED_KEYS_MAX = 10_000;

/** Whether this lone add to `key` is the one in {@link LONE_ADDS_PER_TRIM} that trims (see {@link untrimmed}). */
function loneAddTrims(key: string): boolean {
  let n = untrimmed.get(key);
  if (n === undefined) {
    if (untrimmed.size >= UNTRIMMED_KEYS_MAX) untrimmed.clear();
    n = Math.floor(Math.random() * LONE_ADDS_PER_TRIM);
  }
  n++;
  const trims = n >= LONE_ADDS_PER_TRIM;
  untrimmed.set(key, trims ? 0 : n);
  return trims;
}

/** The adds of one `Stream` instance: each described as a command the batcher may merge with others of its tick. */
export class AddPath {
  readonly #key: string;
  readonly #ttlMs: number | undefined;
  /** The dedup keys, `KEYS[2]` and `KEYS[3]` of the add script when some event of the call has a dedupId. */
  readonly #dedupKeys: readonly string[];
  readonly #keysOf = (parts: ReadonlyArray<readonly Arg[]>): readonly string[] => {
    for (const part of parts) if (part.length > 3 && part[3] !== '') return this.#dedupKeys;
    return [];
  };
  readonly #trim: readonly Arg[];
  readonly #head: readonly Arg[];
  readonly #headNoCreate: readonly Arg[];
  readonly #tag: string;
  readonly #tagNoCreate: string;
  readonly #script: Script;
  /** 'interest' trimming: only the script knows what it may remove (addScripts.ts). */
  readonly #trimsByScript: boolean;
  constructor(s: AddSettings) {
    this.#key = s.key;
    this.#ttlMs = s.ttlMs;
    this.#trim = s.maxLen > 0 ? ['MAXLEN', '~', String(s.maxLen)] : [];
    const ttl = s.ttlMs === undefined ? '' : String(s.ttlMs);
    const mode = s.slidingTtl ? 'sliding' : 'absolute';
    const maxLen = s.maxLen > 0 ? String(s.maxLen) : '';
    const window = String(s.dedupWindowMs);
    this.#head = [maxLen, '', ttl, mode, window];
    this.#headNoCreate = [maxLen, '1', ttl, mode, window];
    const dedup = dedupKeys(s.name);
    this.#dedupKeys = [dedup.current, dedup.old];
    // Streams with the same key and settings merge their adds; others keep theirs apart.
    this.#tag = `${s.key}\n${s.retention}\n${this.#head.join(' ')}`;
    this.#tagNoCreate = `${s.key}\n${s.retention}\n${this.#headNoCreate.join(' ')}`;
    this.#script = s.retention === 'interest' ? addEventsInterest : addEvents;
    this.#trimsByScript = s.retention === 'interest' && s.maxLen > 0;
  }

  /**
   * The add as the batcher sends it: adds of one tick to this stream leave
   * as script calls (batcher.ts); an add without TTL or dedupId that has
   * nothing to merge with, or is large, stays a plain XADD (under
   * 'interest', but for one lone add in 50).
   */
  describe(a: AddRequest): Mergeable {
    const { eventName, payload, topic, onlyIfExists, headers, dedupId } = a;
    let weight = payload.length + eventName.length + (topic?.length ?? 0) + (dedupId?.length ?? 0);
    for (const h of headers) weight += h.length;
    return {
      tag: onlyIfExists ? this.#tagNoCreate : this.#tag,
      script: this.#script,
      head: onlyIfExists ? this.#headNoCreate : this.#head,
      keys: this.#keysOf,
      parts:
        headers.length === 0 && dedupId === undefined
          ? [eventName, payload, topic ?? '']
          : [eventName, payload, topic ?? '', dedupId ?? '', ...headers],
      weight,
      alone: this.#ttlMs === undefined && dedupId === undefined ? () => this.#lone(a) : undefined,
      pack: packAdds,
      unpack: unpackIds,
    };
  }

  /**
   * The command of an add with nothing to merge with: a plain XADD, or
   * undefined for a script call. Under 'interest' a plain XADD cannot trim,
   * so one lone add in {@link LONE_ADDS_PER_TRIM} is a script call that does:
   * an EVAL of the script costs Redis several times an XADD.
   */
  #lone(a: AddRequest): Arg[] | undefined {
    if (this.#trimsByScript && loneAddTrims(this.#key)) return undefined;
    const args: Arg[] = ['XADD', this.#key];
    if (a.onlyIfExists) args.push('NOMKSTREAM');
    if (!this.#trimsByScript) for (const t of this.#trim) args.push(t);
    args.push('*', FIELD_NAME, a.eventName, FIELD_PAYLOAD, a.payload);
    if (a.topic) args.push(FIELD_TOPIC, a.topic);
    for (const h of a.headers) args.push(h);
    return args;
  }
}

/**
 * The events of a merged add in the most compact layout of `addEvents` that
 * fits them: one name for all when they share it and none has a topic, no
 * topics when none has one, name, payload and topic for each when none has
 * headers or a dedupId, else all of it for each. An add's parts are
 * `[name, payload, topic]`, or with headers or a dedupId
 * `[name, payload, topic, dedupId, ...header fields and values]`.
 */
function packAdds(cmd: Arg[], parts: ReadonlyArray<readonly Arg[]>): void {
  const name = parts[0]?.[0];
  let sameName = true;
  let topics = false;
  let extras = false;
  for (const part of parts) {
    if (part[0] !== name) sameName = false;
    if (part[2] !== '') topics = true;
    if (part.length > 3) extras = true;
  }
  if (extras) packExtras(cmd, parts, sameName, topics);
  else if (topics) {
    cmd.push('3');
    for (const [n, p, t] of parts) cmd.push(n ?? '', p ?? '', t ?? '');
  } else if (sameName) {
    cmd.push('1', name ?? '');
    for (const [, p] of parts) cmd.push(p ?? '');
  } else {
    cmd.push('2');
    for (const [n, p] of parts) cmd.push(n ?? '', p ?? '');
  }
}

/**
 * Packs adds some of which have headers or a dedupId (parts `[name,
 * payload, topic, dedupId, ...header fields and values]`, or `[name,
 * payload, topic]`): layout 5 (columns) when every event has the same
 * header names and topics on all or none, else layout 4 (see
 * `EXTRAS_LOOP` in addScripts.ts).
 */
function packExtras(cmd: Arg[], parts: ReadonlyArray<readonly Arg[]>, sameName: boolean, topics: boolean): void {
  const first = parts[0] ?? [];
  let columns = true;
  let dedup = false;
  for (const part of parts) {
    if (part.length !== first.length && !(part.length <= 4 && first.length <= 4)) columns = false;
    for (let i = 4; columns && i < part.length; i += 2) if (part[i] !== first[i]) columns = false;
    if (topics && part[2] === '') columns = false;
    if (part.length > 3 && part[3] !== '') dedup = true;
    if (!columns) break;
  }
  if (!columns) {
    cmd.push('4');
    for (const part of parts) {
      cmd.push(part[0] ?? '', part[1] ?? '', part[2] ?? '', part[3] ?? '', Math.max(0, part.length - 4) / 2);
      for (let i = 4; i < part.length; i++) cmd.push(part[i] ?? '');
    }
    return;
  }
  const nameCol = !sameName || first[0] === '';
  const k = Math.max(0, first.length - 4) / 2;
  cmd.push('5', nameCol ? '' : (first[0] ?? ''), topics ? '1' : '', dedup ? '1' : '', k);
  for (let i = 4; i < first.length; i += 2) cmd.push(first[i] ?? '');
  for (const part of parts) {
    if (nameCol) cmd.push(part[0] ?? '');
    cmd.push(part[1] ?? '');
    if (topics) cmd.push(part[2] ?? '');
    if (dedup) cmd.push(part[3] ?? '');
    for (let i = 5; i < part.length; i += 2) cmd.push(part[i] ?? '');
  }
}

/** The IDs `addEvents` returns, joined by ',' ('-': not added, the stream key was missing), one per event it ran. */
function unpackIds(joined: unknown): Array<string | null | typeof NOT_RUN> | undefined {
  if (typeof joined !== 'string' && !Buffer.isBuffer(joined)) return undefined;
  // IDs are ASCII: latin1 decodes them without UTF-8 validation.
  const s = typeof joined === 'string' ? joined : joined.toString('latin1');
  if (s === '') return [];
  const ids: Array<string | null | typeof NOT_RUN> = s.split(',');
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === '-') ids[i] = null;
    // Not run: the call's error is this add's (addScripts.ts).
    else if (ids[i] === '!') ids[i] = NOT_RUN;
  }
  return ids;
}

/**
 * `code` of an add's error when the add may have been stored: the command
 * was written and its answer never came (the connection closed or timed out
 * first). Every other rejection of an add means the event was not stored.
 */
export const ADD_OUTCOME_UNKNOWN = 'ADD_OUTCOME_UNKNOWN';

/**
 * `code` of an add's error when the client never sent it (it timed out in
 * the client's queue while disconnected, or the connection adds use could
 * not open): not stored. A closed client gives a `ClosedError` instead.
 */
export const ADD_NOT_SENT = 'ADD_NOT_SENT';

/**
 * The error an add rejects with. A command the client never wrote
 * (`wasUnsent`) was not stored: a `ClosedError` when the client is closed
 * (`closed` says how), else code {@link ADD_NOT_SENT}, with the client's
 * reason (outside review A, finding 2: such adds said "outcome unknown").
 * A Redis error reply (it starts with a code: `WRONGTYPE`, `OOM`, ...) says
 * the add ran and failed, or never ran. Anything else (the connection closed
 * or timed out before the answer came) leaves its outcome unknown: the event
 * may be stored or not, code {@link ADD_OUTCOME_UNKNOWN}, and the library
 * does not send it again.
 */
export function addError(err: unknown, stream: string, closed: string | undefined): PulseError {
  if (err instanceof PulseError) return err;
  const detail = errorReason(err);
  if (wasUnsent(err)) {
    const what = `add to stream ${stream}: not stored (never sent to Redis)`;
    if (closed !== undefined) return new ClosedError(`${what}, ${closed}: ${detail}`, { cause: err });
    return new PulseError(`${what}: ${detail}`, { cause: err, code: ADD_NOT_SENT });
  }
  if (replyCode(err) !== undefined) return toPulseError(err, `add to stream ${stream}`);
  return new PulseError(
    `add to stream ${stream}: outcome unknown, no answer from Redis (the event may or may not be stored; it is not sent again): ${detail}`,
    { cause: err, code: ADD_OUTCOME_UNKNOWN },
  );
}
