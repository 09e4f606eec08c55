/**
 * Run around every test file (vitest `setupFiles`): the files share workers (vitest.config.ts), so
 * what a file enables for the whole process is undone when it ends.
 */
import { afterAll } from 'vitest';
import { disableContext } from './otelContext.js';

afterAll(() => disableContext());
