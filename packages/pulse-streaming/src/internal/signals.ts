/**
 * Abort signals the library shares between concurrent waits (a sink's close,
 * a `process()` run's stop): each wait adds a listener and removes it when it
 * ends, so more than ten at once is the design, not a leak. Node warns past
 * ten on one signal (`MaxListenersExceededWarning`, a process warning the
 * application sees: `process({ concurrency: 10 })` with failing handlers
 * printed it): these signals have no such limit.
 */
import { setMaxListeners } from 'node:events';

/** An AbortController whose signal takes any number of listeners. */
export function sharedAbort(): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  return c;
}

/**
 * A signal that aborts when `outer` (the caller's, optional) does, for the
 * waits of one run: one listener on the caller's signal whatever their
 * number, removed by `unlink()` (a signal passed to many runs keeps none).
 */
export function linkedAbort(outer: AbortSignal | undefined): { readonly signal: AbortSignal; unlink(): void } {
  const inner = sharedAbort();
  if (outer === undefined) return { signal: inner.signal, unlink: () => {} };
  const abort = (): void => inner.abort(outer.reason);
  if (outer.aborted) abort();
  else outer.addEventListener('abort', abort, { once: true });
  return { signal: inner.signal, unlink: () => outer.removeEventListener('abort', abort) };
}
