/**
 * Coalesces the commands sent in one turn of the event loop into one
 * pipeline. Stock clients write and track each command on its own; for many
 * `add` or `ack` calls in flight, one pipeline is 1.3x (ioredis) to 2x
 * (node-redis) faster, measured by `npm run bench`. A lone command is sent as is.
 * On a cluster a pipeline must stay within one slot: commands are grouped by
 * the slot of their key (order is kept within a slot, which is all a cluster
 * can promise anyway).
 */
import type { Arg } from './driver.js';

interface Queued {
  readonly args: readonly Arg[];
  readonly key: string | undefined;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** What a pipeline gives back for each command: its reply, or its error. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class TickBatcher {
  #queue: Queued[] = [];

  constructor(
    private readonly one: (args: readonly Arg[], key: string | undefined) => Promise<unknown>,
    private readonly many: (cmds: ReadonlyArray<readonly Arg[]>, key: string | undefined) => Promise<Outcome[]>,
    /** The group a key's commands may be pipelined in (its slot on a cluster); one group when absent. */
    private readonly groupOf?: (key: string) => number,
  ) {}

  send(args: readonly Arg[], key?: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#queue.push({ args, key, resolve, reject }) === 1) queueMicrotask(() => this.#flush());
    });
  }

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    const groupOf = this.groupOf;
    if (!groupOf) {
      this.#flushGroup(queue);
      return;
    }
    const groups = new Map<number, Queued[]>();
    for (const q of queue) {
      // Without a key there is nothing to route by: such a command goes alone.
      if (q.key === undefined) {
        this.#flushGroup([q]);
        continue;
      }
      const g = groupOf(q.key);
      const list = groups.get(g) ?? [];
      groups.set(g, list);
      list.push(q);
    }
    for (const list of groups.values()) this.#flushGroup(list);
  }

  #flushGroup(batch: Queued[]): void {
    const [first] = batch;
    if (!first) return;
    if (batch.length === 1) {
      this.one(first.args, first.key).then(first.resolve, first.reject);
      return;
    }
    this.many(
      batch.map((q) => q.args),
      first.key,
    ).then(
      (outcomes) => {
        batch.forEach((q, i) => {
          const o = outcomes[i];
          if (o?.ok) q.resolve(o.value);
          else q.reject(o ? o.error : new Error('pipeline returned no reply'));
        });
      },
      (err: unknown) => {
        for (const q of batch) q.reject(err);
      },
    );
  }
}
