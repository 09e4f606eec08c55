/**
 * Marks the prototype of each of the library's error classes with the class's
 * name, under a key shared by every copy of the library in the process (a
 * `Symbol.for` key). Node loads the ESM and the CommonJS builds as two
 * modules when an app imports one and a dependency requires the other (the
 * dual-package hazard): each has its own classes, and a plain `instanceof`
 * of an error of one build with a class of the other is false. The name is a
 * literal, not the constructor's `name`, which a minifier may rename.
 */
const KIND = Symbol.for('pulse-streaming.error');

/** Names the class on its prototype (see {@link KIND}). */
function brand(cls: abstract new (...args: never[]) => PulseError, name: string): void {
  Object.defineProperty(cls.prototype, KIND, { value: name });
}

/** True when `value` is an error of any copy of this library whose class chain has a class named `name`. */
function hasKind(value: unknown, name: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (let p: object | null = Object.getPrototypeOf(value); p !== null; p = Object.getPrototypeOf(p)) {
    if (Object.hasOwn(p, KIND) && (p as Record<symbol, unknown>)[KIND] === name) return true;
  }
  return false;
}

/**
 * Base class of every error this library throws or rejects with.
 *
 * Redis failures keep the client's error as `cause`; `code` carries the Redis
 * reply code (`WRONGTYPE`, `NOGROUP`, ...) when there is one.
 *
 * `instanceof` works across the ESM and CommonJS builds: an error created by
 * the build that `require('pulse-streaming')` loads is an instance of the
 * classes `import` gives, and the reverse, as when an ESM app uses streams a
 * CommonJS dependency created (each build has its own classes; Node loads
 * both when both are used). The same holds for two installed copies of the
 * library.
 */
export class PulseError extends Error {
  static {
    brand(PulseError, 'PulseError');
  }

  /**
   * Redis reply code of the underlying error, if it came from Redis, or the
   * library's own (`ADD_NOT_SENT`, ...). Set on the error only when there is
   * one: an error without prints no `code: undefined`.
   */
  declare readonly code: string | undefined;

  constructor(message: string, options?: ErrorOptions & { code?: string | undefined }) {
    super(message, options);
    this.name = 'PulseError';
    if (options?.code !== undefined) (this as { code: string | undefined }).code = options.code;
  }

  /**
   * True for an instance of this class, and for an error of another build or
   * copy of the library whose class chain has a class of this one's name
   * (inherited by the subclasses: `err instanceof DecodeError` is true for a
   * `DecodeError` of either build). A subclass defined outside the library
   * matches its own instances only.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this` is the class on the right of `instanceof`: a subclass inherits this method.
    // biome-ignore lint/complexity/noThisInStatic: PulseError here would be wrong for every subclass.
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    // Only the library's own classes are marked: a user's subclass has no mark of its own, and
    // only its instances are its instances.
    // biome-ignore lint/complexity/noThisInStatic: as above, the class on the right of `instanceof`.
    const proto = this.prototype as unknown as Record<symbol, unknown>;
    const name = Object.hasOwn(proto, KIND) ? proto[KIND] : undefined;
    return typeof name === 'string' && hasKind(value, name);
  }
}

/** A bad argument, detected before any Redis call. */
export class InvalidArgumentError extends PulseError {
  static {
    brand(InvalidArgumentError, 'InvalidArgumentError');
  }

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidArgumentError';
  }
}

/** `subscribe` or `addStream` on a reader or sink that was closed. */
export class ClosedError extends PulseError {
  static {
    brand(ClosedError, 'ClosedError');
  }

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ClosedError';
  }
}

/**
 * The event is no longer this consumer's: after the grace period (the
 * handler did not ack, nack or call `inProgress()` in time) it was claimed by
 * another consumer, or it was acked, dead-lettered or reported lost
 * meanwhile. The handler should stop working on it: another consumer may be
 * handling it now.
 */
export class NotOwnedError extends PulseError {
  static {
    brand(NotOwnedError, 'NotOwnedError');
  }

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NotOwnedError';
  }
}

/**
 * An event's payload could not be turned into its `data`: the codec failed
 * on its bytes, or the event name's schema rejected the value. In `process()`
 * and `processBatch()` such an event is dead-lettered at once, with a reason
 * that starts with `decode:`, and never reaches the handler.
 */
export class DecodeError extends PulseError {
  static {
    brand(DecodeError, 'DecodeError');
  }

  /** The event's name. */
  readonly eventName: string;
  /** The event's entry ID. */
  readonly eventId: string;
  /** What the schema found wrong; empty when the codec itself failed. */
  readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<unknown> | undefined }>;

  constructor(
    message: string,
    options: ErrorOptions & {
      eventName: string;
      eventId: string;
      issues?: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<unknown> | undefined }>;
    },
  ) {
    super(message, options);
    this.name = 'DecodeError';
    this.eventName = options.eventName;
    this.eventId = options.eventId;
    this.issues = options.issues ?? [];
  }
}
