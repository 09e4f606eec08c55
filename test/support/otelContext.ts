/**
 * The async context manager the tracing tests enable (what an SDK's `register()` sets up), and its
 * removal after each test file (test/support/afterFile.ts): the tracing files share workers with
 * the other files, which must not run with OpenTelemetry's global context manager (nor pay for
 * its async hooks).
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

let contextManager: AsyncLocalStorageContextManager | undefined;

/** Async context for spans, once per test file. */
export function enableContext(): void {
  if (contextManager) return;
  contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
}

/** Undoes `enableContext` (nothing when it was not called). */
export function disableContext(): void {
  if (!contextManager) return;
  context.disable();
  contextManager.disable();
  contextManager = undefined;
}
