/**
 * Tasks of one key run one after another, in the order they came; tasks of
 * different keys run at once. A sink's `addStream` and `removeStream` of one
 * stream: interleaved, the removal's leave destroyed the group the re-add had
 * just joined, and the stream was read again from 0 (outside review V).
 */
export class PerKey {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `task` once every task queued before it for `key` has settled; resolves or rejects as it does. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key);
    const p = before === undefined ? task() : before.then(task, task);
    this.#tails.set(key, p);
    const done = (): void => {
      if (this.#tails.get(key) === p) this.#tails.delete(key);
    };
    p.then(done, done);
    return p;
  }
}
