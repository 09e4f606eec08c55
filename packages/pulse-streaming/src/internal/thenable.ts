/**
 * Telling a promise (or another realm's or library's thenable) from a value,
 * for the user callbacks that must answer synchronously (a codec's `encode`,
 * a filter, a logger) or may answer either way (a schema, a codec's `decode`).
 */

/** `v` has a callable `then`. Reading `.then` of null or undefined would throw: they are values. */
export function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Refuses a thenable a callback answered where a value was due: its outcome
 * is nobody's, so a rejection is handled here (left alone, it would be an
 * unhandled rejection: the process exits under Node's default).
 */
export function dropThenable(v: PromiseLike<unknown>): void {
  v.then(undefined, () => {});
}
