/**
 * How the library's errors print (`console.error(err)`, a logger's `util.inspect`): an error
 * with no code shows no `code: undefined` (an outside trial read it as a code missing from the
 * schema refusal of a typed `add`); one with a code shows it.
 */
import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { DecodeError, InvalidArgumentError, PulseError, Stream } from '../packages/pulse-streaming/src/index.js';

describe('printed errors', () => {
  it('show a code only when they have one', async () => {
    // Refused before any Redis call: the client never connects.
    const redis = new Redis({ lazyConnect: true });
    try {
      const typed = new Stream<{ e: { n: number } }>('print', redis, {
        codec: 'json',
        schemas: {
          e: {
            '~standard': {
              version: 1,
              vendor: 'test',
              validate: (v: unknown) =>
                typeof (v as { n?: unknown }).n === 'number' && (v as { n: number }).n >= 0
                  ? { value: v as { n: number } }
                  : { issues: [{ message: 'n must be >= 0' }] },
            },
          },
        },
      });
      const refused = await typed.add('e', { n: -1 }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(InvalidArgumentError);
      expect(inspect(refused)).not.toContain('code: undefined');
      expect(Object.hasOwn(refused as object, 'code')).toBe(false);
      expect((refused as PulseError).code).toBeUndefined();
    } finally {
      redis.disconnect();
    }
    const decode = new DecodeError('bad bytes', { eventName: 'e', eventId: '1-0' });
    expect(inspect(decode)).not.toContain('code: undefined');
    expect(inspect(decode)).toContain("eventId: '1-0'");
    const coded = new PulseError('not stored', { code: 'ADD_NOT_SENT' });
    expect(coded.code).toBe('ADD_NOT_SENT');
    expect(inspect(coded)).toContain("code: 'ADD_NOT_SENT'");
  });
});
