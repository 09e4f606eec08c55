/**
 * Events per second of each stream, from deltas of its `entries-added`
 * counter (`XINFO STREAM`), which counts every add even when trimming keeps
 * the length flat. Samples are recorded whenever the dashboard reads a
 * stream's figures (the live pages refresh every second or two), so a chart
 * covers the last minutes during which anyone looked at the stream. Memory is
 * bounded: a few minutes of samples for at most {@link MAX_STREAMS} streams.
 */

/** How far back the history goes. */
export const HISTORY_MS = 5 * 60_000;
/** Samples closer together than this are merged (many viewers of one stream). */
const MIN_SPACING_MS = 900;
/** Streams with a history; the least recently sampled is forgotten first. */
const MAX_STREAMS = 2000;

/** A point of a rate series: time in ms and events per second over the interval ending then. */
export type RatePoint = [timeMs: number, perSecond: number];

export class RateHistory {
  readonly #samples = new Map<string, [number, number][]>();

  /** Records that `stream` had added `added` entries in total at `now`. */
  record(stream: string, added: number | null, now = Date.now()): void {
    if (added === null) return;
    let s = this.#samples.get(stream);
    if (s === undefined) {
      if (this.#samples.size >= MAX_STREAMS) {
        const oldest = this.#samples.keys().next().value;
        if (oldest !== undefined) this.#samples.delete(oldest);
      }
      s = [];
    } else {
      // Map order is insertion order: re-inserting keeps the most recently sampled last.
      this.#samples.delete(stream);
    }
    this.#samples.set(stream, s);
    const last = s[s.length - 1];
    // The counter went down: the stream was destroyed and created again; start over.
    if (last !== undefined && added < last[1]) s.length = 0;
    if (last !== undefined && s.length > 0 && now - last[0] < MIN_SPACING_MS) return;
    s.push([now, added]);
    while (s.length > 0 && (s[0] as [number, number])[0] < now - HISTORY_MS) s.shift();
  }

  /** Events per second between consecutive samples, oldest first. */
  series(stream: string): RatePoint[] {
    const s = this.#samples.get(stream) ?? [];
    const out: RatePoint[] = [];
    for (let i = 1; i < s.length; i++) {
      const [t0, a0] = s[i - 1] as [number, number];
      const [t1, a1] = s[i] as [number, number];
      out.push([t1, Math.round((((a1 - a0) * 1000) / Math.max(1, t1 - t0)) * 10) / 10]);
    }
    return out;
  }

  /** The latest rate, or null before two samples. */
  current(stream: string): number | null {
    const s = this.series(stream);
    return s.length > 0 ? (s[s.length - 1] as RatePoint)[1] : null;
  }
}
