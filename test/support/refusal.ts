/** What a call refused as bad input says. */
import { expect } from 'vitest';
import { InvalidArgumentError } from '../../packages/pulse-streaming/src/index.js';

/** The message of the InvalidArgumentError `fn` throws or rejects with; fails when it does not refuse so. */
export async function refusal(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error('accepted');
}
