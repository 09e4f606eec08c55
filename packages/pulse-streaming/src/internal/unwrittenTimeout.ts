/**
 * The user's command timeout for the commands a ready node-redis client is
 * given without it (nodeRedisDriver.ts `send`, which says why it drops it).
 *
 * node-redis writes a command on a `setImmediate` after `sendCommand`; when
 * the socket closes in between, or while the command waits behind a full
 * socket buffer, the command stays in the client's write queue until it
 * reconnects, and without a timeout that is for as long as Redis is away: an
 * add, an ack or a destroy issued then never settled (outside review M).
 *
 * So such commands share one `AbortSignal` per stretch of readiness (one
 * listener each, which node-redis removes when it writes the command: no
 * timer, no signal per command), and when the client starts reconnecting
 * the signal of the stretch that ended is aborted after the client's command
 * timeout. node-redis aborts only a command still waiting to be written, as
 * its own timeout does: a written one keeps waiting for its reply, however
 * long its work takes.
 */
import { isErrorNamed, markUnsent } from './redisErrors.js';
import { sharedAbort } from './signals.js';

/** What the window needs of a node-redis client (not a cluster: it keeps the user's timeout). */
export interface TimedClient {
  /** The client a proxy (`withCommandOptions`, `withTypeMapping`) is made over; the client itself has itself. */
  readonly _self?: object | undefined;
  /** The command options node-redis merges into every command of this client (or proxy): `timeout` among them. */
  readonly _commandOptions?: { readonly timeout?: unknown } | undefined;
  on(event: 'reconnecting', listener: () => void): unknown;
}

/** Options of a command sent to a ready client: no timeout of its own, the stretch's signal. */
export interface UnwrittenOptions {
  readonly typeMapping: object;
  readonly timeout: undefined;
  readonly abortSignal: AbortSignal;
}

/** See the file's comment. One per user's client (its driver). */
export class UnwrittenTimeout {
  #controller = sharedAbort();
  #options: UnwrittenOptions;
  /** Whether a command was given this stretch's signal: an unused one needs no timer. */
  #used = false;

  constructor(
    private readonly client: TimedClient,
    private readonly typeMapping: object,
  ) {
    this.#options = this.#optionsOf(this.#controller);
    watchReconnects(client, this);
  }

  /** Options for a command sent now to the ready client; undefined when the client has no timeout (it waits for ever). */
  options(): UnwrittenOptions | undefined {
    if (this.#timeoutMs() === undefined) return undefined;
    this.#used = true;
    return this.#options;
  }

  /**
   * The error a command sent with `options` rejects with: node-redis'
   * `AbortError` of the stretch's abort becomes a timeout that says what
   * happened, marked unsent (it was never written: an add rejects with
   * `ADD_NOT_SENT`). Any other error is returned as is.
   */
  explain(err: unknown, options: UnwrittenOptions): unknown {
    const reason: unknown = options.abortSignal.reason;
    if (!options.abortSignal.aborted || !isErrorNamed(err, ['AbortError']) || typeof reason !== 'number') return err;
    return markUnsent(
      new Error(
        `command timed out: not written before the connection dropped, and the client did not reconnect within its command timeout (${reason} ms)`,
        { cause: err },
      ),
    );
  }

  /** The client started reconnecting: the stretch ended (see {@link watchReconnects}). */
  dropped(): void {
    const ms = this.#timeoutMs();
    if (!this.#used || ms === undefined) return;
    const controller = this.#controller;
    this.#controller = sharedAbort();
    this.#options = this.#optionsOf(this.#controller);
    this.#used = false;
    // Unref'd: a client left reconnecting must not keep the process up for the timeout's sake.
    setTimeout(() => controller.abort(ms), ms).unref();
  }

  #optionsOf(controller: AbortController): UnwrittenOptions {
    return { typeMapping: this.typeMapping, timeout: undefined, abortSignal: controller.signal };
  }

  #timeoutMs(): number | undefined {
    const t = this.client._commandOptions?.timeout;
    return typeof t === 'number' && t > 0 ? t : undefined;
  }
}

/** The timeouts watching each client, by the client their proxies share (`_self`). */
const watchers = new WeakMap<object, Set<WeakRef<UnwrittenTimeout>>>();
/** Removes a dropped driver's timeout from its client's set. */
const forget = new FinalizationRegistry<{ set: Set<WeakRef<UnwrittenTimeout>>; ref: WeakRef<UnwrittenTimeout> }>(({ set, ref }) =>
  set.delete(ref),
);

/**
 * Tells `timeout` when its client starts reconnecting, with one listener per
 * client: drivers are made per object, and every proxy of a client is one (a
 * Stream over `client.withCommandOptions(...)` per request added a listener
 * each time, and kept every proxy alive; review P). The timeouts are held
 * weakly: a driver nobody uses any more goes, and its entry with it.
 * 'reconnecting' is emitted when a ready client's socket closed (after
 * 'error'), with the commands it had not written still queued; not 'error',
 * whose listener would hide the user's missing one (node-redis' client then
 * throws it, as it would without the library).
 */
function watchReconnects(client: TimedClient, timeout: UnwrittenTimeout): void {
  const key = (client._self ?? client) as TimedClient;
  let set = watchers.get(key);
  if (set === undefined) {
    const timeouts = new Set<WeakRef<UnwrittenTimeout>>();
    set = timeouts;
    watchers.set(key, timeouts);
    key.on('reconnecting', () => {
      for (const ref of timeouts) ref.deref()?.dropped();
    });
  }
  const ref = new WeakRef(timeout);
  set.add(ref);
  forget.register(timeout, { set, ref });
}
