/**
 * Go Pulse v1.10's stream lifecycle record, written so Go services can use
 * streams this library created (README "Using it with Go services").
 *
 * Go Pulse v1.10 keeps a hash per stream name at `pulse:stream:<name>:lifecycle`
 * (`generation`, `state`, `physical_key`, `retention_config`, `ttl_owned`).
 * Its readers refuse a name without one ("stream is not initialized"); its
 * producers and sinks create it, adopting an existing `pulse:stream:<name>`
 * as generation 1. This library creates the same record, as a Go producer
 * with the same options would, once per `Stream` instance: when its first add
 * stored an event, when a sink joined it, when dead letters were replayed
 * into it. Never per add: that path is hot.
 *
 * Not atomic with the stream's creation, and needs not be: the record's key
 * has no hash tag, so on a cluster it lives in another slot than the stream.
 * The add that created the stream waits for the record, so a Go reader
 * started after it finds both (test/interopLifecycle.test.ts), but only
 * {@link GO_LIFECYCLE_WAIT_MS}: on a cluster the record's node may be down or
 * frozen while the stream's answers, and an event stored and acknowledged
 * must not wait on another node (outside review A, finding 1: the add never
 * resolved). Past that wait, or when a try fails, the record is written in
 * the background, with backoff, and a warning says so; adds no longer wait
 * for it. A process that dies in between leaves a stream without a record,
 * which the next instance's first add completes (Go treats that state as a
 * pre-v1.10 stream anyway).
 *
 * This library does not follow Go's generations: after Go's `Destroy` (the
 * record says `destroyed`, and Go's next incarnation lives at
 * `pulse:stream:<name>:generation:<n>`) it keeps using `pulse:stream:<name>`,
 * and says so once per instance with a warning: at its first look, or for an
 * instance already running, when a sink of it finds the key gone or its group
 * missing (`recheck`), or, when it publishes, at most once a minute (`afterAdd`).
 */
import type { Logger } from '../logger.js';
import type { Retention } from '../options.js';
import { Backoff } from './backoff.js';
import { type Driver, evalScript } from './driver.js';
import { warnOrEmit } from './lossReport.js';
import { isRetryable, replyCode } from './redisErrors.js';
import { str } from './replies.js';
import { Script } from './script.js';

/** Go Pulse v1.10's lifecycle record key of stream `name` (no hash tag, as Go writes it). */
export function goLifecycleKey(name: string): string {
  return `pulse:stream:${name}:lifecycle`;
}

/**
 * Go's `retentionConfig()` string for a stream with these options, so a Go
 * handle configured as the Node stream is matches it. `maxLen` 0 (no
 * trimming) is Go's unbounded `max=0`. Under `retention: 'interest'` the
 * record says unbounded whatever `maxLen`: Go has no such retention, and
 * Go producers adopting `max=<maxLen>` trim exactly to it on every `XADD`,
 * entries our sinks have not acked included (outside review I, finding 2);
 * unbounded, they never trim, and our producers' own trimming (only what
 * every group is done with) keeps the stream near `maxLen`. `retention`
 * defaults to 'limits'.
 */
export function goRetentionConfig(
  maxLen: number,
  ttlMs: number | undefined,
  slidingTtl: boolean,
  retention: Retention = 'limits',
): string {
  const ttl = ttlMs !== undefined && ttlMs > 0;
  const max = retention === 'interest' ? 0 : maxLen;
  return `v=2|max=${max}|mode=${ttl ? 'ttl' : 'none'}|value=${ttl ? ttlMs : 0}|sliding=${ttl && slidingTtl}`;
}

/**
 * Creates the record when it has no `generation`, with the fields Go's
 * `establishStreamScript` writes for a new generation 1 (no deadline: this
 * library has none). Returns the record's state, generation and physical key.
 * KEYS: lifecycle. ARGV: stream key, retention config, '1' when the stream has a TTL.
 */
export const ensureGoLifecycle = new Script(
  'ensureGoLifecycle',
  `if not redis.call('HGET', KEYS[1], 'generation') then
  redis.call('HSET', KEYS[1], 'generation', '1', 'state', 'active', 'physical_key', ARGV[1], 'retention_config', ARGV[2])
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'ttl_owned', '1') end
end
local f = redis.call('HMGET', KEYS[1], 'state', 'generation', 'physical_key')
return {f[1] or '', f[2] or '', f[3] or ARGV[1]}`,
);

/**
 * Reads the record as `ensureGoLifecycle` returns it, writing nothing: state,
 * generation ('' when there is no record) and physical key.
 * KEYS: lifecycle.
 */
const readGoLifecycle = new Script(
  'readGoLifecycle',
  `local f = redis.call('HMGET', KEYS[1], 'state', 'generation', 'physical_key')
return {f[1] or '', f[2] or '', f[3] or ''}`,
);

/** What `GoLifecycle` needs of its `Stream`. */
export interface GoLifecycleStream {
  readonly name: string;
  readonly key: string;
  readonly driver: Driver;
  readonly logger: Logger;
  readonly hasLogger: boolean;
  readonly maxLen: number;
  readonly ttlMs: number | undefined;
  readonly slidingTtl: boolean;
  readonly retention: Retention;
}

/** The process warning's `code` when Go no longer shares a stream with us. */
export const GO_DIVERGED_CODE = 'PULSE_GO_STREAM_DESTROYED';

/**
 * How long the first add of a `Stream` instance (or `newSink`, or a replay of
 * dead letters) waits for the record before it resolves without it: 1 s. A
 * healthy Redis answers in a round trip; past this the record is being
 * written in the background and a warning says so.
 */
export const GO_LIFECYCLE_WAIT_MS = 1000;
/** Backoff of the background writes: from 0.5 s (jittered) up to 30 s between tries. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * How often a publishing `Stream` instance reads Go's record again, in ms
 * (default 60000): a process that only publishes has no sink to meet a gone
 * key or group, so without this it would never notice a Go `Destroy` and
 * keep writing where no Go service reads. One read a minute per publishing
 * instance, none while it publishes nothing. Tests lower it.
 */
export const goLifecycleTiming = { producerRecheckMs: 60_000 };

/** Creates a stream's Go lifecycle record once per `Stream` instance. */
export class GoLifecycle {
  readonly #stream: GoLifecycleStream;
  #done = false;
  /** The record is late (a try failed, or the wait ran out): it is written in the background, nobody waits for it. */
  #late = false;
  /** The writer (first try, then background retries) is running. */
  #writing = false;
  /** What callers wait on while the first try runs, bounded by {@link GO_LIFECYCLE_WAIT_MS}. */
  #wait: Promise<void> | undefined;
  /** This instance said Go no longer shares the stream: said once, never looked at again. */
  #diverged = false;
  /** A {@link GoLifecycle.recheck} is reading the record. */
  #rechecking = false;
  /** When a publishing instance looks again (`Date.now()` ms): see {@link GoLifecycle.afterAdd}. */
  #nextLook = Date.now() + goLifecycleTiming.producerRecheckMs;

  constructor(stream: GoLifecycleStream) {
    this.#stream = stream;
  }

  /** True once the record exists (or cannot be written): adds then skip `ensure`. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Makes sure the record gets written. Never rejects: the event that led
   * here is stored whatever happens, and an add that rejected would be sent
   * again by its caller, a duplicate. Waits for the first try, at most
   * {@link GO_LIFECYCLE_WAIT_MS}; once that try failed or ran out of time, the
   * record is written in the background (retried with backoff, not per call)
   * and calls resolve at once. A refusal that no retry outlives (a key of
   * another type) is logged once.
   */
  ensure(): Promise<void> {
    if (this.#done) return Promise.resolve();
    if (!this.#writing) this.#startWriter();
    if (this.#late) return Promise.resolve();
    if (this.#wait) return this.#wait;
    return Promise.resolve();
  }

  /**
   * Reads the record again, in the background, after this instance met a sign
   * that its stream's key began another life (a sink found the key gone or its
   * group missing), or now and then while it publishes. Go's `Destroy` does that (deletes
   * the key, and Go's next writer moves to `...:generation:<n>`), and instances
   * running then would otherwise never look again: their events would go
   * where no Go service reads, and Go's where no Node sink reads, without a
   * word (outside review I, finding 3); a publishing instance also looks
   * now and then ({@link GoLifecycle.afterAdd}). Says so once per instance, as the
   * first look does; nothing when the record is ours. Never waits nor
   * rejects: the caller's path goes on whatever Redis answers. `create`
   * (default false): write the record when there is none, as the first add
   * does (a publishing instance: Go readers need it); a sink only reads it.
   */
  recheck(create = false): void {
    // Before the first look is done, that look reads the record anyway.
    if (this.#diverged || this.#rechecking || !this.#done) return;
    this.#rechecking = true;
    const s = this.#stream;
    const key = goLifecycleKey(s.name);
    const reply = create
      ? evalScript(s.driver, ensureGoLifecycle, [key], this.#ensureArgs())
      : evalScript(s.driver, readGoLifecycle, [key], []);
    void reply.then(
      (r) => {
        this.#rechecking = false;
        const [state, generation, physical] = Array.isArray(r) ? r.map(str) : [];
        // No record (read only): nothing Go could follow elsewhere.
        if (generation) this.#says(state, generation, physical);
      },
      () => {
        // Best effort: the next sign looks again.
        this.#rechecking = false;
      },
    );
  }

  /**
   * After a stored add, once the first look is done: reads the record again
   * (as {@link GoLifecycle.recheck} with `create`) when
   * {@link goLifecycleTiming}'s interval passed since the last look. A plain
   * `XADD` cannot tell it created the key anew, so a process that only
   * publishes looks now and then instead (outside review I, finding 3).
   */
  afterAdd(): void {
    if (this.#diverged) return;
    const now = Date.now();
    if (now < this.#nextLook) return;
    this.#nextLook = now + goLifecycleTiming.producerRecheckMs;
    this.recheck(true);
  }

  /** Warns once when the record says Go no longer uses our key for the stream. */
  #says(state: string | undefined, generation: string | undefined, physical: string | undefined): void {
    const s = this.#stream;
    if (this.#diverged || (state === 'active' && physical === s.key)) return;
    this.#diverged = true;
    const key = goLifecycleKey(s.name);
    const msg =
      `stream ${s.name}: Go Pulse destroyed it (${key} says ${state || 'nothing'}, generation ${generation}` +
      ` at ${physical}); Go services no longer read or write ${s.key}, which this library keeps using` +
      ` (README "Using it with Go services")`;
    warnOrEmit(s.logger, s.hasLogger, { key, state, generation, physicalKey: physical }, msg, GO_DIVERGED_CODE);
  }

  /** `ensureGoLifecycle`'s arguments for this stream. */
  #ensureArgs(): string[] {
    const s = this.#stream;
    return [s.key, goRetentionConfig(s.maxLen, s.ttlMs, s.slidingTtl, s.retention), s.ttlMs ? '1' : '0'];
  }

  /** Starts the writer, and the bounded wait for its first try when nobody gave up on it yet. */
  #startWriter(): void {
    this.#writing = true;
    let firstTry!: (finished: boolean) => void;
    const first = new Promise<boolean>((resolve) => {
      firstTry = resolve;
    });
    void this.#write(firstTry).finally(() => {
      this.#writing = false;
    });
    if (this.#late) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), GO_LIFECYCLE_WAIT_MS);
      timer.unref();
    });
    // `done` (or `late`) turns true in the step that settles the adds waiting
    // here, so a later add whose reply came meanwhile cannot resolve before them.
    this.#wait = Promise.race([first, timeout]).then((finished) => {
      clearTimeout(timer);
      this.#wait = undefined;
      if (finished) this.#done = true;
      else this.#becameLate();
    });
  }

  /** Says once that the record is late, and that adds no longer wait for it. */
  #becameLate(): void {
    if (this.#late || this.#done) return;
    this.#late = true;
    const s = this.#stream;
    s.logger.warn(
      { key: goLifecycleKey(s.name), waitedMs: GO_LIFECYCLE_WAIT_MS },
      'Go Pulse lifecycle record not written yet (Redis did not answer): retrying in the background; Go readers refuse the stream until it is',
    );
  }

  /**
   * Tries until the record is written (or refused for good), with backoff
   * between tries; stops when the client is closed (a later call starts it
   * again). `first` hears how the first try went.
   */
  async #write(first: (finished: boolean) => void): Promise<void> {
    const s = this.#stream;
    const backoff = new Backoff(RETRY_MIN_MS, RETRY_MAX_MS);
    let report: ((finished: boolean) => void) | undefined = first;
    for (;;) {
      const finished = await this.#run();
      report?.(finished);
      report = undefined;
      if (finished) {
        if (this.#late) s.logger.info({ key: goLifecycleKey(s.name) }, 'Go Pulse lifecycle record written');
        this.#done = true;
        return;
      }
      this.#becameLate();
      await unrefSleep(backoff.next());
      if (s.driver.closed() !== undefined) return;
    }
  }

  /** One try; false when Redis did not answer (tried again after a backoff). */
  async #run(): Promise<boolean> {
    const s = this.#stream;
    const key = goLifecycleKey(s.name);
    let reply: unknown;
    try {
      reply = await evalScript(s.driver, ensureGoLifecycle, [key], this.#ensureArgs());
    } catch (err) {
      // No answer, or a refusal a retry outlives (TRYAGAIN, CLUSTERDOWN while the record's slot
      // migrates or fails over on a cluster, LOADING, OOM): the writer tries again. Before, such
      // a reply left the record unwritten for the life of this Stream instance.
      if (replyCode(err) === undefined || isRetryable(err)) return false;
      s.logger.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'cannot write Go Pulse lifecycle record');
      return true;
    }
    const [state, generation, physical] = Array.isArray(reply) ? reply.map(str) : [];
    this.#says(state, generation, physical);
    return true;
  }
}

/** Resolves after `ms`; its timer does not keep the process alive (the writer is best effort). */
function unrefSleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}
