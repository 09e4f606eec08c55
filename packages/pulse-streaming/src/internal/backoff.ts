/**
 * Jittered exponential backoff for background loops: a failing loop retries
 * at most a few times a second and never spins.
 */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly minMs = 100,
    private readonly maxMs = 2000,
  ) {}

  /** The next delay: full jitter between half and all of the exponential step. */
  next(): number {
    const step = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    return Math.round(step / 2 + Math.random() * (step / 2));
  }

  get failures(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
