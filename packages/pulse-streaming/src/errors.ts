/**
 * Base class of every error this library throws or rejects with.
 *
 * Redis failures keep the client's error as `cause`; `code` carries the Redis
 * reply code (`WRONGTYPE`, `NOGROUP`, ...) when there is one.
 */
export class PulseError extends Error {
  /** Redis reply code of the underlying error, if it came from Redis. */
  readonly code: string | undefined;

  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(message, options);
    this.name = 'PulseError';
    this.code = options?.code;
  }
}

/** A bad argument, detected before any Redis call. */
export class InvalidArgumentError extends PulseError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidArgumentError';
  }
}

/** `subscribe` or `addStream` on a reader or sink that was closed. */
export class ClosedError extends PulseError {
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
