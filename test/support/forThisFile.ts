/**
 * An internal setting lowered for one test file: files share workers (vitest.config.ts), so what a
 * file sets for the process is restored when it ends, to what it was (not to a default written
 * again here). Call it at the file's top level.
 */
import { afterAll } from 'vitest';

export function forThisFile<T extends object, K extends keyof T>(target: T, key: K, value: T[K]): void {
  const before = target[key];
  target[key] = value;
  afterAll(() => {
    target[key] = before;
  });
}
