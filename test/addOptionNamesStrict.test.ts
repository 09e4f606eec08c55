/**
 * An add option the library would ignore is refused (InvalidArgumentError,
 * before any Redis call): a dedup key under another name (`dedupKey`,
 * `idempotencyKey` for `dedupId`) made a retried add store the event twice,
 * and a Stream option given per add (`maxLen`) was silently not applied.
 * An event's own fields pass (test/optionNamesValidCode). Outside review Q.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { streamKey } from '../packages/pulse-streaming/src/keys.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';

describe.each(CLIENT_KINDS)('%s: add options the library would ignore', (kind) => {
  it('a dedup key under a name add does not take is refused, not ignored (a retried add stored twice)', async () => {
    const c = await connect(kind);
    const s = new Stream(uniqueName('revQaddDedup'), c.redis);
    try {
      let refused: unknown;
      for (let attempt = 0; attempt < 2 && refused === undefined; attempt++) {
        // The app's retry of one add, as it would be after a timeout.
        await s.add('order', 'o-1', { dedupKey: 'order-1' } as never).catch((err: unknown) => {
          refused = err;
        });
      }
      const stored = Number(await c.cmd('XLEN', streamKey(s.name)));
      expect(refused, `not refused; entries stored: ${stored}`).toBeInstanceOf(InvalidArgumentError);
    } finally {
      await s.destroy();
      await c.close();
    }
  });

  it('a Stream option given per add (maxLen) is refused, not ignored', async () => {
    const c = await connect(kind);
    const s = new Stream(uniqueName('revQaddMaxLen'), c.redis);
    try {
      await expect(s.add('e', 'p', { maxLen: 1 } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await s.destroy();
      await c.close();
    }
  });
});
