/**
 * Samples a process's RSS and V8 heap while events pass through it. The base
 * is taken after a warm-up and a full GC (run node with `--expose-gc`).
 */
import type { MemoryReport } from './results.js';

const MB = 1024 * 1024;
const SAMPLE_EVERY_MS = 50;

function fullGc(): void {
  if (!globalThis.gc) throw new Error('memory sampling needs node --expose-gc');
  globalThis.gc();
  globalThis.gc();
}

export class MemorySampler {
  #timer: NodeJS.Timeout | undefined;
  #rssBase = 0;
  #heapBase = 0;
  #rssPeak = 0;
  #heapPeak = 0;

  /** Records the base after a full GC, and starts tracking peaks from there. */
  markBase(): void {
    fullGc();
    const m = process.memoryUsage();
    this.#rssBase = this.#rssPeak = m.rss;
    this.#heapBase = this.#heapPeak = m.heapUsed;
    this.#timer ??= setInterval(() => this.#sample(), SAMPLE_EVERY_MS);
  }

  get started(): boolean {
    return this.#timer !== undefined;
  }

  /** Stops sampling and reports, after a last sample and a full GC. */
  finish(events: number, elapsedMs: number): MemoryReport {
    clearInterval(this.#timer);
    this.#sample();
    fullGc();
    const end = process.memoryUsage();
    return {
      events,
      elapsedMs,
      rssBase: this.#rssBase / MB,
      rssPeak: this.#rssPeak / MB,
      rssEnd: end.rss / MB,
      heapBase: this.#heapBase / MB,
      heapPeak: this.#heapPeak / MB,
      heapEnd: end.heapUsed / MB,
    };
  }

  #sample(): void {
    const m = process.memoryUsage();
    if (m.rss > this.#rssPeak) this.#rssPeak = m.rss;
    if (m.heapUsed > this.#heapPeak) this.#heapPeak = m.heapUsed;
  }
}
