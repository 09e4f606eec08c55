/**
 * Coalesces the commands sent in one turn of the event loop into one
 * pipeline. Stock clients write and track each command on its own; for many
 * `add` or `ack` calls in flight, one pipeline is 1.3x (ioredis) to 2x
 * (node-redis) faster, measured by `npm run bench`. A lone command is sent as is.
 */
import type { Arg } from './driver.js';

interface Queued {
  readonly args: readonly Arg[];
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** What a pipeline gives back for each command: its reply, or its error. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class TickBatcher {
  #queue: Queued[] = [];

  constructor(
    private readonly one: (args: readonly Arg[]) => Promise<unknown>,
    private readonly many: (cmds: ReadonlyArray<readonly Arg[]>) => Promise<Outcome[]>,
  ) {}

  send(args: readonly Arg[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#queue.push({ args, resolve, reject }) === 1) queueMicrotask(() => this.#flush());
    });
  }

  #flush(): void {
    const batch = this.#queue;
    this.#queue = [];
    const [first] = batch;
    if (batch.length === 1 && first) {
      this.one(first.args).then(first.resolve, first.reject);
      return;
    }
    this.many(batch.map((q) => q.args)).then(
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
