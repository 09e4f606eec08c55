/**
 * Outside review P: `tail --headers` (9aab0fa) prints `{name=value, ...}`
 * with each name and value shown as any text is (control characters
 * escaped) but not the separators: a value holding ", x=" prints exactly
 * as two headers would, so an operator reads headers the event does not
 * have (a forged-looking `tenant=` among them). Expected: two different
 * header sets never print the same.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { cli } from './support/cli.js';
import { connect, uniqueName } from './support/clients.js';

describe('tail --headers', () => {
  it('two different header sets print differently', async () => {
    const c = await connect('ioredis');
    const name = uniqueName('revPtailhdr');
    const s = new Stream(name, c.redis);
    try {
      await s.add('e', 'p', { headers: { a: '1, tenant=acme' } });
      await s.add('e', 'p', { headers: { a: '1', tenant: 'acme' } });
      const shown = await cli(['tail', name, '--from', 'oldest', '--count', '2', '--headers', '--no-color']);
      expect(shown.code).toBe(0);
      const heads = shown.stdout
        .trim()
        .split('\n')
        .map((l) => /\{.*\}/.exec(l)?.[0]);
      expect(heads).toHaveLength(2);
      // Before the fix: both lines show {a=1, tenant=acme}.
      expect(heads[0]).not.toBe(heads[1]);
    } finally {
      await s.destroy();
      await c.close();
    }
  });
});
