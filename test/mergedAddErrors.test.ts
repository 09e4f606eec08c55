/**
 * README: "An add that rejects with a Redis error (WRONGTYPE, OOM, ...; err.code
 * says which) was not stored." The tests checked a lone add on a WRONGTYPE key;
 * here adds of one tick (merged into one script call), with and without
 * dedupId, headers and a TTL (the script paths), on a key of another type.
 */
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('merged adds on a WRONGTYPE key (%s)', (kind) => {
  for (const [what, opts, add] of [
    ['plain', {}, {}],
    ['dedupId', {}, { dedupId: 'x' }],
    ['ttlMs', { ttlMs: 60_000 }, {}],
    ['headers', {}, { headers: { a: 'b' } }],
  ] as const) {
    it(`${what}: every add of the tick rejects with a PulseError, code WRONGTYPE; the key is unchanged`, async ({
      onTestFinished,
    }) => {
      const c = await connect(kind);
      onTestFinished(() => c.close());
      const s = new Stream(uniqueName('wt'), c.redis, opts);
      onTestFinished(async () => void (await c.cmd('DEL', s.key)));
      await c.cmd('SET', s.key, 'not a stream');
      const r = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) =>
          s.add('e', `p${i}`, 'dedupId' in add ? { dedupId: `${add.dedupId}${i}` } : (add as object)),
        ),
      );
      for (const x of r) {
        expect(x.status).toBe('rejected');
        const err = (x as PromiseRejectedResult).reason;
        expect(err).toBeInstanceOf(PulseError);
        expect((err as PulseError).code).toBe('WRONGTYPE');
      }
      expect(String(await c.cmd('GET', s.key))).toBe('not a stream');
    });
  }
});
