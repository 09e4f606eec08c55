/**
 * Dead letters at the largest entry ID (2^64-1 in both parts): readDeadLetters
 * with `after` that ID threw "invalid start ID" instead of answering [], and a
 * replay of exactly a page (500) of letters ending there threw after moving
 * them all, the caller losing the returned IDs (outside review G).
 */
import { describe, expect, it } from 'vitest';
import { readDeadLetters, replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { deadLetterFields } from './support/deadLetterFields.js';

const MAX = '18446744073709551615';
describe.each(CLIENT_KINDS)('dead-letter ID edge (%s)', (kind) => {
  it('readDeadLetters({ after: the last letter }) answers [] when that letter is the largest ID', async ({ onTestFinished }) => {
    const c = await connect(kind);
    onTestFinished(() => c.close());
    const s = new Stream(uniqueName('dl'), c.redis);
    const dead = `pulse:stream:${s.name}:dead`;
    onTestFinished(async () => void (await c.cmd('DEL', dead)));
    await c.cmd('XADD', dead, '5-0', ...deadLetterFields(s.name, 1));
    await c.cmd('XADD', dead, `${MAX}-${MAX}`, ...deadLetterFields(s.name, 2));
    const all = await readDeadLetters(s);
    const last = all[all.length - 1]?.id as string;
    let next: unknown;
    try {
      next = (await readDeadLetters(s, { after: last })).map((d) => d.id);
    } catch (err) {
      next = `threw: ${(err as Error).message}`;
    }
    expect({ all: all.map((d) => d.id), next }).toEqual({ all: ['5-0', `${MAX}-${MAX}`], next: [] });
  });

  it('replayDeadLetters() of exactly 500 letters, the last at the largest ID, resolves with all 500', async ({
    onTestFinished,
  }) => {
    const c = await connect(kind);
    onTestFinished(() => c.close());
    const s = new Stream(uniqueName('dl'), c.redis, { maxLen: 0 });
    const dead = `pulse:stream:${s.name}:dead`;
    onTestFinished(async () => {
      await c.cmd('DEL', dead);
      await s.destroy();
    });
    for (let i = 1; i < 500; i++) await c.cmd('XADD', dead, `${i}-0`, ...deadLetterFields(s.name, i));
    await c.cmd('XADD', dead, `${MAX}-${MAX}`, ...deadLetterFields(s.name, 500));
    let out: unknown;
    try {
      out = (await replayDeadLetters(s)).length;
    } catch (err) {
      out = `threw: ${(err as Error).message}`;
    }
    expect({ out, left: Number(await c.cmd('XLEN', dead)) }).toEqual({ out: 500, left: 0 });
  });
});
