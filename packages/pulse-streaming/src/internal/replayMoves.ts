/**
 * How `replayDeadLetters` finds and moves dead letters (see its TSDoc for
 * the guarantees): the letters are picked from pages that carry no payload
 * (`deadLetterPage`), moved in one script per run of letters on one node,
 * and in claimed batches bounded by size across cluster slots.
 */
import { randomUUID } from 'node:crypto';
import { PulseError } from '../errors.js';
import { type Arg, evalScript } from './driver.js';
import { replayClaimKey, replayedKey } from './keys.js';
import { addReplayed, claimDeadLetters, deadLetterPage, finishReplay, replayDead } from './replayScripts.js';
import { str } from './replies.js';
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

/** Moves letters of one replay, in the order given. */
export class LetterMover {
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
      if (!this.t.atomic && run.length > 0 && runBytes + l.bytes > BATCH_BYTES) await flush();
      run.push(l.id);
      runBytes += l.bytes;
    }
    await flush();
    return out;
  }

  async #moveRun(ids: string[]): Promise<string[]> {
    const { stream, maxLen, deadKey } = this.t;
    if (!this.t.atomic) return this.#moveAcrossSlots(ids);
    const args = [maxLen, stream.ttlMs ?? '', stream.slidingTtl ? 'sliding' : 'absolute', ...ids];
    const reply = (await evalScript(stream.driver, replayDead, [deadKey, stream.key], args)) as unknown[];
    return reply.filter((r) => r).map(str);
  }

  /**
   * The cluster move (see `replayDeadLetters`): claim, add unless added,
   * delete, forget. Claims that came too late to add are given up and
   * taken again.
   */
  async #moveAcrossSlots(ids: string[]): Promise<string[]> {
    const { stream, maxLen, deadName, deadKey } = this.t;
    const driver = stream.driver;
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
      if (mine.length === 0) return [];
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
      await evalScript(driver, finishReplay, claims, [token, 'done', ...mineIds]);
      await driver.send(['HDEL', replayed, ...fields], replayed);
      return added.map(str);
    }
  }
}
