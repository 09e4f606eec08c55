/**
 * How `replayDeadLetters` finds and moves dead letters (see its TSDoc for
 * the guarantees): the letters are picked from pages that carry no payload
 * (`deadLetterPage`), moved in one script per run of letters on one node,
 * in claimed batches bounded by size across cluster slots, and one by one
 * by the client when a letter is too big for a script's XADD.
 */
import { randomUUID } from 'node:crypto';
import { PulseError } from '../errors.js';
import { type Arg, evalScript, type OwnedConnection } from './driver.js';
import { HEADER_PREFIX } from './headers.js';
import { replayClaimKey, replayedKey } from './keys.js';
import {
  addReplayed,
  bigAfter,
  bigBefore,
  bigCheck,
  claimDeadLetters,
  deadLetterPage,
  finishReplay,
  replayDead,
  tooBigForScript,
} from './replayScripts.js';
import { buf, str } from './replies.js';
import type { StreamHandle } from './streamHandle.js';

/** A dead letter as a replay pages through them: no payload, only what picks and batches it. */
export interface PagedLetter {
  readonly id: string;
  readonly sourceStream: string;
  readonly sourceSink: string;
  /** Its event field pairs (`n`, `p`, `t`, `h.*`). */
  readonly pairs: number;
  /** Their size in bytes, names and values. */
  readonly bytes: number;
}

/** The largest entry ID Redis takes: nothing can come after it. */
export const LAST_ID = '18446744073709551615-18446744073709551615';

/**
 * Letters of the dead-letter stream `deadKey`, without payloads: `['range',
 * start, count]` for a page in ID order, `['ids', ...ids]` for those IDs
 * (those not found are left out).
 */
export async function readPage(stream: StreamHandle, deadKey: string, args: readonly Arg[]): Promise<PagedLetter[]> {
  const reply = (await evalScript(stream.driver, deadLetterPage, [deadKey], args)) as unknown[];
  return reply.map((r) => {
    const [id, sourceStream, sourceSink, pairs, bytes] = r as unknown[];
    return {
      id: str(id),
      sourceStream: str(sourceStream),
      sourceSink: str(sourceSink),
      pairs: Number(pairs),
      bytes: Number(bytes),
    };
  });
}

/** How long a cluster replayer owns the letters it claimed. */
const CLAIM_MS = 30_000;
/** Adds later than this after the claim are refused (CLAIM_MS less a margin for the nodes' clocks). */
const LATE_MS = 20_000;
/**
 * A big letter's claim older than this before its transaction is given up
 * (`bigCheck`): shorter than LATE_MS, so that `bigAfter`'s own check, a
 * moment later in the transaction, does not find late a claim found in time
 * here and take the add back (see `bigBefore`) short of a 5 s stall between
 * two commands.
 */
const CHECK_LATE_MS = LATE_MS - 5_000;
/**
 * Most event bytes claimed at once across slots: a claim brings the letters'
 * fields into this process, and the add sends them back. A bigger letter
 * goes alone.
 */
const BATCH_BYTES = 4 * 1024 * 1024;

/** The settings of a replay's adds. */
export interface ReplayTarget {
  readonly stream: StreamHandle;
  /** `MAXLEN ~` of the adds (0: none). */
  readonly maxLen: number;
  readonly deadName: string;
  readonly deadKey: string;
  /** Both streams in one slot (or one node): a move is one script. */
  readonly atomic: boolean;
}

/** Moves letters of one replay, in the order given; holds the connection big letters need until closed. */
export class LetterMover {
  #conn: OwnedConnection | undefined;

  constructor(private readonly t: ReplayTarget) {}

  /** Moves `letters` in order. Resolves to the new event IDs of those moved here (others' moves left out). */
  async move(letters: readonly PagedLetter[]): Promise<string[]> {
    const out: string[] = [];
    let run: string[] = [];
    let runBytes = 0;
    const flush = async (): Promise<void> => {
      if (run.length > 0) out.push(...(await this.#moveRun(run)));
      run = [];
      runBytes = 0;
    };
    for (const l of letters) {
      if (tooBigForScript(l.pairs)) {
        // In order: the run before it goes first.
        await flush();
        const id = await this.#moveBig(l.id);
        if (id !== undefined) out.push(id);
        continue;
      }
      if (!this.t.atomic && run.length > 0 && runBytes + l.bytes > BATCH_BYTES) await flush();
      run.push(l.id);
      runBytes += l.bytes;
    }
    await flush();
    return out;
  }

  /** Closes the connection the moves used, if any. */
  close(): void {
    this.#conn?.close();
    this.#conn = undefined;
  }

  /**
   * The connection of this replay's moves, opened at the first: the
   * library's own, which never sends a command again after a reconnect.
   * ioredis does on the user's client: a move whose reply the dropped
   * connection lost ran again, found its letters gone (or, across cluster
   * slots, claimed), and the replay resolved to none replayed though they
   * were (the CLI said "no dead letters to replay"). Lost now, the move
   * rejects: its outcome unknown.
   */
  async #own(): Promise<OwnedConnection> {
    const { stream } = this.t;
    this.#conn ??= await stream.driver.openOwned(`pulse:replay:${stream.name}`, stream.logger);
    return this.#conn;
  }

  async #moveRun(ids: string[]): Promise<string[]> {
    const { stream, maxLen, deadKey } = this.t;
    const out: string[] = [];
    const big: string[] = [];
    if (this.t.atomic) {
      const args = [maxLen, stream.ttlMs ?? '', stream.slidingTtl ? 'sliding' : 'absolute', ...ids];
      const reply = (await evalScript(await this.#own(), replayDead, [deadKey, stream.key], args)) as unknown[];
      reply.forEach((r, i) => {
        if (!r) return;
        if (str(r) === 'big') big.push(ids[i] as string);
        else out.push(str(r));
      });
    } else {
      const moved = await this.#moveAcrossSlots(ids);
      out.push(...moved.added);
      big.push(...moved.big);
    }
    // Not expected (the page counted their fields as the script does), but never stuck on one.
    for (const id of big) {
      const added = await this.#moveBig(id);
      if (added !== undefined) out.push(added);
    }
    return out;
  }

  /**
   * The cluster move (see `replayDeadLetters`): claim, add unless added,
   * delete, forget. Claims that came too late to add are given up and
   * taken again. `big`: letters the add script could not add (given up).
   */
  async #moveAcrossSlots(ids: string[]): Promise<{ added: string[]; big: string[] }> {
    const { stream, maxLen, deadName, deadKey } = this.t;
    const driver = await this.#own();
    for (let attempt = 1; ; attempt++) {
      const token = randomUUID();
      const [now, found] = (await evalScript(
        driver,
        claimDeadLetters,
        [deadKey, ...ids.map((id) => replayClaimKey(deadName, id))],
        [token, CLAIM_MS, ...ids],
      )) as [unknown, unknown[]];
      const mine: Array<{ id: string; fields: unknown[] }> = [];
      found.forEach((f, i) => {
        if (Array.isArray(f)) mine.push({ id: ids[i] as string, fields: f });
      });
      if (mine.length === 0) return { added: [], big: [] };
      const mineIds = mine.map((m) => m.id);
      const claims = [deadKey, ...mineIds.map((id) => replayClaimKey(deadName, id))];
      const replayed = replayedKey(stream.name);
      const fields = mineIds.map((id) => `${deadKey} ${id}`);
      const args: Arg[] = [maxLen, stream.ttlMs ?? '', stream.slidingTtl ? 'sliding' : 'absolute', Number(now), LATE_MS];
      mine.forEach((m, i) => {
        args.push(fields[i] as string, m.fields.length / 2, ...(m.fields as Arg[]));
      });
      let added: unknown;
      try {
        added = await evalScript(driver, addReplayed, [stream.key, replayed], args);
      } catch (err) {
        // Whatever was added is recorded: giving the claims up lets a later
        // replay finish those moves without adding them twice.
        await evalScript(driver, finishReplay, claims, [token, 'release', ...mineIds]).catch(() => {});
        throw err;
      }
      if (!Array.isArray(added)) {
        await evalScript(driver, finishReplay, claims, [token, 'release', ...mineIds]);
        if (attempt < 3) continue;
        throw new PulseError(`replay of ${mineIds.length} dead letters kept reaching Redis too late after claiming them`);
      }
      const done: string[] = [];
      const out: string[] = [];
      const big: string[] = [];
      added.forEach((a, i) => {
        const id = mineIds[i] as string;
        if (str(a) === 'big') big.push(id);
        else {
          done.push(id);
          out.push(str(a));
        }
      });
      if (done.length > 0) {
        const doneClaims = [deadKey, ...done.map((id) => replayClaimKey(deadName, id))];
        await evalScript(driver, finishReplay, doneClaims, [token, 'done', ...done]);
        await driver.send(['HDEL', replayed, ...done.map((id) => `${deadKey} ${id}`)], replayed);
      }
      if (big.length > 0) {
        const bigClaims = [deadKey, ...big.map((id) => replayClaimKey(deadName, id))];
        await evalScript(driver, finishReplay, bigClaims, [token, 'release', ...big]);
      }
      return { added: out, big };
    }
  }

  /**
   * Moves one letter too big for a script's XADD with the cluster steps
   * (on one node too): claim it, add it from here in one transaction with
   * its record (`#addBig`), delete it, forget the record. Resolves to its
   * new ID, or undefined when it is gone or another replayer owns it.
   */
  async #moveBig(id: string): Promise<string | undefined> {
    const { stream, deadName, deadKey } = this.t;
    const driver = await this.#own();
    const claims = [deadKey, replayClaimKey(deadName, id)];
    const replayed = replayedKey(stream.name);
    const field = `${deadKey} ${id}`;
    for (let attempt = 1; ; attempt++) {
      const token = randomUUID();
      const [now, found] = (await evalScript(driver, claimDeadLetters, claims, [token, CLAIM_MS, id])) as [unknown, unknown[]];
      const letter = found[0];
      if (!Array.isArray(letter)) return undefined;
      const release = () => evalScript(driver, finishReplay, claims, [token, 'release', id]);
      let result: string;
      try {
        result = await this.#addBig(letter, field, Number(now));
      } catch (err) {
        // Nothing was added without its record: giving the claim up lets a later replay move it.
        await release().catch(() => {});
        throw err;
      }
      if (result === 'late') {
        await release();
        if (attempt < 3) continue;
        throw new PulseError('replay of a dead letter kept reaching Redis too late after claiming it');
      }
      await evalScript(driver, finishReplay, claims, [token, 'done', id]);
      await driver.send(['HDEL', replayed, field], replayed);
      return result;
    }
  }

  /**
   * Adds a claimed big letter to the stream with its record in one
   * transaction, unless it was recorded already (a replayer stopped after
   * adding it) or the claim is late: both are decided before MULTI, under
   * WATCH of the replayed hash, so that the XADD is only sent when it is
   * kept. Sent anyway and taken back by `bigAfter`, the entry left a gap
   * every sink of the stream counted as an event trimmed before it read it
   * (outside review AJ, defect 2). A record made or removed by anyone after
   * the check aborts the EXEC, and the check runs again. Resolves to the new
   * ID, the recorded one, or 'late' (nothing added).
   */
  async #addBig(letter: readonly unknown[], field: string, claimedAt: number): Promise<string> {
    const { stream, maxLen } = this.t;
    const replayed = replayedKey(stream.name);
    const conn = await this.#own();
    const ttl = stream.ttlMs ?? '';
    const mode = stream.slidingTtl ? 'sliding' : 'absolute';
    // Each pass ends in EXEC or UNWATCH; an aborted EXEC means the hash changed
    // since the check. Bounded by the claim's age: the check says 'late' in time.
    for (;;) {
      await conn.send(['WATCH', replayed], replayed);
      let watching = true;
      try {
        const [late, recorded] = (await evalScript(conn, bigCheck, [replayed], [field, claimedAt, CHECK_LATE_MS])) as [
          unknown,
          unknown,
        ];
        if (Number(late) === 1) return 'late';
        if (recorded !== null && recorded !== undefined && recorded !== false) return str(recorded);
        let outcomes: Awaited<ReturnType<typeof conn.transaction>>;
        try {
          outcomes = await conn.transaction(
            [
              ['EVAL', bigBefore.source, 2, stream.key, replayed, field],
              ['XADD', stream.key, '*', ...eventFields(letter.map(buf))],
              ['EVAL', bigAfter.source, 2, stream.key, replayed, field, claimedAt, LATE_MS, maxLen, ttl, mode],
            ],
            stream.key,
          );
          watching = false;
        } catch (err) {
          // The drivers' word for an EXEC that WATCH aborted (driverShared.ts, ioredisDriver.ts): nothing ran.
          if (err instanceof Error && err.message === 'transaction aborted') {
            watching = false;
            continue;
          }
          throw err;
        }
        const after = outcomes[2];
        if (!after?.ok) throw after?.error ?? new PulseError('replay of a big dead letter: no reply');
        const result = str(after.value);
        if (result === 'failed') {
          const add = outcomes[1];
          throw add && !add.ok ? add.error : new PulseError('replay of a big dead letter: the add added nothing');
        }
        return result;
      } finally {
        // A WATCH left on this connection would abort the next letter's transaction for nothing.
        if (watching) await conn.send(['UNWATCH'], replayed).catch(() => {});
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The event fields of a letter, as the scripts pick them (EVENT_FIELDS in
 * replayScripts.ts): `n`, `p`, `t`, `h.*`, in their order; `n` '' and `p` ''
 * when it has none.
 */
function eventFields(f: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (let j = 0; j + 1 < f.length; j += 2) {
    const k = f[j] as Buffer;
    const name = k.toString('latin1');
    if (name === 'n' || name === 'p' || name === 't' || name.startsWith(HEADER_PREFIX)) out.push(k, f[j + 1] as Buffer);
  }
  return out.length > 0 ? out : [Buffer.from('n'), EMPTY, Buffer.from('p'), EMPTY];
}
