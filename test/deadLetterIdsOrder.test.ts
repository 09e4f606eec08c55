/**
 * readDeadLetters({ ids }) returns the letters oldest first, once each (its
 * TSDoc: "oldest first"), and replayDeadLetters({ ids }) adds them in
 * dead-letter order, once each, whatever the order of the IDs given. Before
 * (outside review E of 2026-12-05): in the order given, a repeated ID read
 * twice, and a replay of [b, a] added b before a.
 */
import { describe, expect, it } from 'vitest';
import { readDeadLetters, replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { deadLetterFields } from './support/deadLetterFields.js';

describe.each(CLIENT_KINDS)('readDeadLetters({ ids }) order (%s)', (kind) => {
  it('returns the letters oldest first, once each, whatever the order of the IDs given', async ({ onTestFinished }) => {
    const c = await connect(kind);
    onTestFinished(() => c.close());
    const s = new Stream(uniqueName('dl'), c.redis);
    const dead = `pulse:stream:${s.name}:dead`;
    onTestFinished(async () => void (await c.cmd('DEL', dead)));
    const fields = (i: number) => deadLetterFields(s.name, i);
    const a = String(await c.cmd('XADD', dead, '*', ...fields(1)));
    const b = String(await c.cmd('XADD', dead, '*', ...fields(2)));
    const got = await readDeadLetters(s, { ids: [b, a, b] });
    expect(got.map((d) => d.id)).toEqual([a, b]);
  });
});

describe.each(CLIENT_KINDS)('replayDeadLetters({ ids }) order and repeats (%s)', (kind) => {
  it('replays each letter once, in dead-letter order, whatever the order of the IDs given', async ({ onTestFinished }) => {
    const c = await connect(kind);
    onTestFinished(() => c.close());
    const s = new Stream(uniqueName('dl'), c.redis, { maxLen: 0 });
    const dead = `pulse:stream:${s.name}:dead`;
    onTestFinished(async () => {
      await c.cmd('DEL', dead);
      await s.destroy();
    });
    const fields = (i: number) => deadLetterFields(s.name, i);
    const a = String(await c.cmd('XADD', dead, '*', ...fields(1)));
    const b = String(await c.cmd('XADD', dead, '*', ...fields(2)));
    const replayed = await replayDeadLetters(s, { ids: [b, a, a] });
    const entries = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown[]]>;
    const payloads = entries.map(([, f]) => String(f[f.findIndex((x) => String(x) === 'p') + 1]));
    expect({ replayed: replayed.length, payloads }).toEqual({ replayed: 2, payloads: ['p1', 'p2'] });
  });
});
