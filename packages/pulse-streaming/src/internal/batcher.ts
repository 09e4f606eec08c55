/**
 * Coalesces the commands sent in one turn of the event loop into one
 * pipeline (ioredis: `pipeline()`, 1.3x faster than as many calls for many
 * `add` or `ack` calls in flight, measured by `npm run bench`; node-redis:
 * one `sendCommand` each, which it writes in one go, as its own pipeline
 * would lose replies on an error). A lone command is sent as is.
 * On a cluster a pipeline must stay within one slot: commands are grouped by
 * the slot of their key (order is kept within a slot, which is all a cluster
 * can promise anyway).
 *
 * Commands that say how (`Mergeable`) go further: those of one tick with the
 * same tag become one script call. A client spends most of its time per
 * command, not per byte, so `stream.add` with many in flight publishes
 * 1.5-1.8x faster with ioredis as one script call per few hundred events
 * than as many `XADD`s in one pipeline (`npm run bench`, BENCHMARKS.md).
 *
 * What one tick produces leaves in steps of at most 256 commands (merged
 * ones counted one by one), one step per turn of the event loop, so that
 * the server runs one while the client encodes the next (see `#pump`).
 * Adds on a cluster instead keep one step per slot in flight
 * (`oneStepInFlight`), so that no redirection can reorder them.
 */
import type { Arg } from './command.js';
import type { Script } from './script.js';

/**
 * A command that may travel in one script call with others of its tag. The
 * script takes the key as `KEYS[1]`, `head` once, then what `pack` makes of
 * the commands' `parts`, and returns `{replies, error}`: what `unpack` turns
 * into one reply per command it ran, in order, and the text of the error that
 * stopped it (the rest did not run), or nil.
 */
export interface Mergeable {
  /** Commands merge only with others of the same tag: same script, key and head. */
  readonly tag: string;
  readonly script: Script;
  readonly head: readonly Arg[];
  /**
   * Keys of the script after the command's key (`KEYS[2]`...) for these
   * merged commands; none when absent. The same function for every command
   * of the tag.
   */
  readonly keys?: (parts: ReadonlyArray<readonly Arg[]>) => readonly string[];
  readonly parts: readonly Arg[];
  /** Bytes this command adds to a merged call. */
  readonly weight: number;
  /**
   * Builds the command to send when there is nothing to merge with; absent,
   * or when it returns undefined, the script runs with this one command.
   */
  readonly alone?: () => readonly Arg[] | undefined;
  /** Appends the script's arguments after `head` for the merged commands' `parts`, in order. */
  readonly pack: (cmd: Arg[], parts: ReadonlyArray<readonly Arg[]>) => void;
  /** The replies of the commands a merged call ran, in order, from the first element of its reply; undefined when malformed. */
  readonly unpack: (replies: unknown) => readonly unknown[] | undefined;
}

/** In what `unpack` returns: the command did not run, the merged call's error is its own. */
export const NOT_RUN: unique symbol = Symbol('not run');

/**
 * Bounds of one merged call: a script blocks the server while it runs
 * (256 XADDs take well under a millisecond), and Redis buffers a whole
 * command before it runs it. Past ~100 events per call the gain is flat.
 */
export const MERGE_MAX_COMMANDS = 256;
export const MERGE_MAX_BYTES = 256 * 1024;

/**
 * A mergeable command at least this heavy leaves alone, as the plain command
 * its `alone` builds (an add: XADD), in the same pipeline step and in its
 * place among the others, when it has one. A merged call copies each
 * argument into the script and the script copies it into the command it
 * runs: past a few KB that copy costs Redis more than the call saves
 * (10 KB payloads: an EVAL of them took 2-3x the server time of their XADDs).
 */
export const MERGE_ALONE_BYTES = 8 * 1024;

/** Commands (merged ones counted one by one) of a group sent per turn of the event loop. */
export const STEP_ITEMS = MERGE_MAX_COMMANDS;

interface Queued {
  readonly args: readonly Arg[] | undefined;
  readonly key: string | undefined;
  readonly merge: Mergeable | undefined;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** Commands that leave as one entry of a pipeline: one command, or several merged into one script call. */
interface Unit {
  readonly items: Queued[];
  weight: number;
  /** Set when its command is built: a lone command sent as is, not a script call. */
  plain?: boolean;
}

/** What a pipeline gives back for each command: its reply, or its error. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Flushes are queued as its reactions (see `#push`). */
const SETTLED = Promise.resolve();

export class TickBatcher {
  #queue: Queued[] = [];

  constructor(
    private readonly one: (args: readonly Arg[], key: string | undefined) => Promise<unknown>,
    private readonly many: (cmds: ReadonlyArray<readonly Arg[]>, key: string | undefined) => Promise<Outcome[]>,
    /** The group a key's commands may be pipelined in (its slot on a cluster); one group when absent. */
    private readonly groupOf?: (key: string) => number,
    /**
     * Sends a group's next step only once the previous one is answered. For
     * adds on a cluster: a client that learns a slot moved (MOVED) sends the
     * commands issued after that to the new owner at once, while those
     * already on their way to the old owner are redirected when their
     * answer comes, so they would be stored after later ones (issue 13,
     * defect 15). Commands of one step are redirected in the order sent.
     */
    private readonly oneStepInFlight = false,
  ) {}

  send(args: readonly Arg[], key?: string): Promise<unknown> {
    return this.#push(args, key, undefined);
  }

  /** Sends a command that may be merged with others of its tag sent in the same tick. */
  sendMergeable(merge: Mergeable, key: string): Promise<unknown> {
    return this.#push(undefined, key, merge);
  }

  #push(args: readonly Arg[] | undefined, key: string | undefined, merge: Mergeable | undefined): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // A reaction of a settled promise, not queueMicrotask (same order): Node wraps each
      // queueMicrotask callback in an AsyncResource, a cost every awaited add paid (issue 19).
      if (this.#queue.push({ args, key, merge, resolve, reject }) === 1) void SETTLED.then(this.#flushQueue);
    });
  }

  readonly #flushQueue = (): void => this.#flush();

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    const groupOf = this.groupOf;
    if (queue.length === 1 && this.#sendLone(queue[0] as Queued)) return;
    const pending = new Map<number, Queued[]>();
    for (const q of queue) {
      // On a cluster a command without a key has nothing to route by: it goes alone.
      const g = !groupOf ? 0 : q.key === undefined ? undefined : groupOf(q.key);
      if (g === undefined) void this.#sendUnits([{ items: [q], weight: 0 }]);
      else {
        const list = pending.get(g) ?? [];
        pending.set(g, list);
        list.push(q);
      }
    }
    for (const [g, list] of pending) {
      const units = mergeUnits(list);
      const waiting = this.#outbox.get(g);
      if (waiting) {
        for (const u of units) waiting.push(u);
        continue;
      }
      if (this.#inFlight.has(g)) {
        // Sent when the step in flight is answered.
        this.#outbox.set(g, units);
        continue;
      }
      // Sent before the next group is merged: on a cluster that node starts meanwhile.
      this.#sendStep(g, units);
      if (units.length > 0) {
        this.#outbox.set(g, units);
        this.#schedulePump();
      }
    }
  }

  /**
   * The only command of a tick (an awaited add, a lone ack or read): sent
   * at once as a step of its own, without the maps the general path builds to
   * group and merge, when nothing of its group waits or is in flight (which
   * it would have to queue behind: then it takes the general path). What the
   * general path would do with it, for less: awaited one-at-a-time adds spend
   * their time here between round trips (issue 19).
   */
  #sendLone(q: Queued): boolean {
    const groupOf = this.groupOf;
    const g = !groupOf ? 0 : q.key === undefined ? undefined : groupOf(q.key);
    if (g === undefined) {
      void this.#sendUnits([{ items: [q], weight: 0 }]);
      return true;
    }
    if (this.#outbox.has(g) || this.#inFlight.has(g)) return false;
    this.#sendStep(g, [{ items: [q], weight: q.merge?.weight ?? 0 }]);
    return true;
  }

  /**
   * Units waiting to leave, per group, in order. A turn of the event loop
   * sends at most {@link STEP_ITEMS} commands of each group; the rest wait
   * for the next turn, and so does anything sent meanwhile to that group,
   * so that order per key holds across ticks.
   */
  readonly #outbox = new Map<number, Unit[]>();
  /** With `oneStepInFlight`: the groups whose last step is not answered yet. */
  readonly #inFlight = new Set<number>();
  #pumpScheduled = false;

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => this.#pump());
  }

  /**
   * Sends the next step of each group that has one waiting. Many adds in
   * one tick leave as several script calls: sent in one write, the server
   * would wait while the client encodes them all and the client would wait
   * while the server runs them all. A step per turn lets the server run one
   * call while the client encodes the next: 1.5x more adds per second with
   * ioredis, 1.15x with node-redis (1000 in flight, BENCHMARKS.md).
   */
  #pump(): void {
    this.#pumpScheduled = false;
    let waiting = false;
    for (const [g, units] of this.#outbox) {
      if (this.#inFlight.has(g)) continue;
      this.#sendStep(g, units);
      if (units.length === 0) this.#outbox.delete(g);
      // A group waiting for its answer is pumped again when it comes.
      else if (!this.#inFlight.has(g)) waiting = true;
    }
    if (waiting) this.#schedulePump();
  }

  /** Sends the first units of `units`, up to {@link STEP_ITEMS} commands (all with `oneStepInFlight`), and removes them from it. */
  #sendStep(g: number, units: Unit[]): void {
    let n = 0;
    let end = 0;
    // One step in flight: the whole backlog leaves as that step, or adds would wait a round trip per 256.
    const limit = this.oneStepInFlight ? Number.POSITIVE_INFINITY : STEP_ITEMS;
    while (end < units.length && n < limit) n += (units[end++] as Unit).items.length;
    const answered = this.#sendUnits(units.splice(0, end));
    if (!this.oneStepInFlight) return;
    this.#inFlight.add(g);
    const next = (): void => {
      this.#inFlight.delete(g);
      if (this.#outbox.has(g)) this.#schedulePump();
    };
    answered.then(next, next);
  }

  /** Settles once every unit is settled. */
  #sendUnits(units: Unit[]): Promise<void> {
    try {
      return this.#send(units);
    } catch (err) {
      // A client that throws instead of rejecting fails these commands, not
      // the turn of the event loop that sends them (nor the steps behind them).
      for (const u of units) reject(u, err);
      return Promise.resolve();
    }
  }

  #send(units: Unit[]): Promise<void> {
    const [first] = units;
    if (!first) return Promise.resolve();
    if (units.length === 1) return this.#sendOne(first);
    const key = first.items[0]?.key;
    return this.many(units.map(commandOf), key).then(
      (outcomes) => {
        units.forEach((u, i) => {
          const o = outcomes[i];
          if (!o) reject(u, new Error('pipeline returned no reply'));
          else settle(u, o);
        });
      },
      (err: unknown) => {
        for (const u of units) reject(u, err);
      },
    );
  }

  #sendOne(u: Unit): Promise<void> {
    const key = u.items[0]?.key;
    return this.one(commandOf(u), key).then(
      (value) => settle(u, { ok: true, value }),
      (error: unknown) => reject(u, error),
    );
  }
}

/**
 * Groups mergeable commands of one pipeline into units, keeping the order of
 * commands on each key: a command that does not merge ends the open merged
 * call of its key (of every key when it has none), so nothing sent after it
 * on that key runs before it.
 */
function mergeUnits(batch: readonly Queued[]): Unit[] {
  const units: Unit[] = [];
  // The merged call still open for each tag, and the tag open on each key.
  const open = new Map<string, Unit>();
  const openTagOf = new Map<string, string>();
  const close = (key: string | undefined): void => {
    if (key === undefined) {
      open.clear();
      openTagOf.clear();
      return;
    }
    const tag = openTagOf.get(key);
    if (tag !== undefined) open.delete(tag);
    openTagOf.delete(key);
  };
  for (const q of batch) {
    const m = q.merge;
    if (!m || q.key === undefined) {
      close(q.key);
      units.push({ items: [q], weight: 0 });
      continue;
    }
    if (m.weight >= MERGE_ALONE_BYTES && m.alone) {
      // Large: a unit of its own, so a plain command (see `commandOf`), in its place in the order of its key.
      close(q.key);
      units.push({ items: [q], weight: m.weight });
      continue;
    }
    if (openTagOf.get(q.key) !== m.tag) close(q.key);
    const unit = open.get(m.tag);
    if (unit && unit.items.length < MERGE_MAX_COMMANDS && unit.weight + m.weight <= MERGE_MAX_BYTES) {
      unit.items.push(q);
      unit.weight += m.weight;
      continue;
    }
    const fresh: Unit = { items: [q], weight: m.weight };
    units.push(fresh);
    open.set(m.tag, fresh);
    openTagOf.set(q.key, m.tag);
  }
  return units;
}

/**
 * A merged call always carries the script's source (`EVAL`), never only its
 * SHA (`EVALSHA`). A SHA can meet `NOSCRIPT` whenever the server's script
 * cache is empty: after a restart, a `SCRIPT FLUSH`, a failover, or on the
 * new owner of a migrated slot. By the time the client reads that error,
 * the commands pipelined behind the call have run, so its retry would store
 * its events after later ones (issue 13, defects 2 and 15), and nothing the
 * client can know beforehand rules it out. With the source the call cannot
 * bounce. It costs Redis a SHA1 of the 1.7 KB source per call (one call per
 * up to 256 events) and the client its bytes: measured with 1000 adds in
 * flight, within noise of EVALSHA for both clients (see the commit message).
 */
function commandOf(u: Unit): readonly Arg[] {
  const [q] = u.items;
  if (!q) return [];
  const m = q.merge;
  if (!m) {
    u.plain = true;
    return q.args ?? [];
  }
  const alone = u.items.length === 1 ? m.alone?.() : undefined;
  if (alone) {
    u.plain = true;
    return alone;
  }
  const parts = u.items.map((item) => item.merge?.parts ?? []);
  const extra = m.keys?.(parts) ?? [];
  const cmd: Arg[] = ['EVAL', m.script.source, 1 + extra.length, q.key ?? '', ...extra];
  for (const h of m.head) cmd.push(h);
  m.pack(cmd, parts);
  return cmd;
}

function reject(u: Unit, err: unknown): void {
  for (const q of u.items) q.reject(err);
}

/** Hands each command of a unit its reply: a merged call's reply holds one per command it ran. */
function settle(u: Unit, o: Outcome): void {
  if (!o.ok) {
    reject(u, o.error);
    return;
  }
  if (u.plain) {
    u.items[0]?.resolve(o.value);
    return;
  }
  const [packed, error] = Array.isArray(o.value) ? o.value : [];
  const replies = u.items[0]?.merge?.unpack(packed);
  if (!replies) {
    reject(u, new Error('unexpected reply from a merged call'));
    return;
  }
  // The script stopped at the error: commands after it (or marked NOT_RUN) did not run.
  const stopped = new Error(error === null || error === undefined ? 'merged call stopped early' : String(error));
  u.items.forEach((q, i) => {
    if (i < replies.length && replies[i] !== NOT_RUN) q.resolve(replies[i]);
    else q.reject(stopped);
  });
}
