/**
 * Outside review AI (defect 2; line numbers as of commit 41e36ff): a raw
 * producer writes an entry with fields the library does not know (`XADD ...
 * * event created data {...}`: no `n`, no `p`). A sink reads it with
 * defaults (name '', empty payload, "entry without n or p"), and a typed
 * `process()` dead-letters it with `decode:` (the empty payload is not
 * JSON), as it should. But the dead letter then has no event field at all
 * (`n`, `p`, `t`, `h.*`), and the replay scripts (`replayDead` line 56,
 * `addReplayed` line 118 of internal/replayScripts.ts, through EVENT_FIELDS
 * line 17) copy only those into `XADD key * ...`: an XADD without fields,
 * which Redis refuses ("Wrong number of args"). The script aborts, so
 * `replayDeadLetters` (and `pulse-streaming dead replay`, and the
 * dashboard's replay) rejects, and every later replay of the stream fails on
 * that same letter: the letters after it are never replayed until someone
 * deletes it by hand.
 *
 * Expected: a replay never fails for good on one letter's contents: that
 * letter goes back as the event the sink saw (name '', empty payload) or is
 * left out, and every other letter is replayed.
 * Failed before the fix: 4 of 4 (both clients, both tests: "ERR Wrong number of args calling Redis command from script").
 * Fixed: a letter with no event field is replayed with `n` '' and `p` '' (one with some keeps exactly its own).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readDeadLetters, replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { buildCli, cli } from './support/cli.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

const WAIT = { timeout: 8000 };

describe.concurrent.each(CLIENT_KINDS)('replay of a dead letter without event fields (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    buildCli();
    c = await connect(kind);
  }, 120_000);
  afterAll(() => c.close());

  /** A typed stream with two dead letters: the raw producer's odd entry (first), then a refused one. */
  async function twoLetters(onFinished: (fn: () => Promise<void>) => void) {
    const s = new Stream(uniqueName('revAIodd'), c.redis, { maxLen: 0, schemas: { e: z.object({ i: z.number() }) } });
    const deadKey = `pulse:stream:${s.name}:dead`;
    onFinished(async () => {
      await s.destroy().catch(() => {});
      await c.cmd('DEL', deadKey);
    });
    await c.cmd('XADD', s.key, '*', 'event', 'e', 'data', '{"i":1}');
    await c.cmd('XADD', s.key, '*', 'n', 'e', 'p', '{"i":"one"}');
    const sink = await s.newSink('k', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 1000 });
    const ac = new AbortController();
    const run = sink.process(() => {}, { signal: ac.signal });
    await waitFor(async () => Number(await c.cmd('XLEN', deadKey)) === 2, { ...WAIT, what: 'two dead letters' });
    ac.abort();
    await run;
    await sink.close();
    const letters = await readDeadLetters(s);
    expect(letters.map((l) => [l.eventName, l.reason.startsWith('decode:')])).toEqual([
      ['', true],
      ['e', true],
    ]);
    return { s, deadKey };
  }

  it('replayDeadLetters replays every letter, the one without n or p included or left out, and does not reject', async (ctx) => {
    const { s, deadKey } = await twoLetters((fn) => ctx.onTestFinished(fn));
    const before = Number(await c.cmd('XLEN', s.key));
    // Before a fix: rejects with "ERR Wrong number of args calling Redis command from script", and keeps doing so.
    const outcome = await replayDeadLetters(s).then(
      (ids) => ({ ids: ids.length }),
      (err: unknown) => ({ err: String(err) }),
    );
    expect(outcome).not.toHaveProperty('err');
    // The refused letter (`n` e) went back to the stream, whatever became of the odd one.
    const added = ((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>).slice(before);
    expect(added.map(([, f]) => f[f.indexOf('p') + 1])).toContain('{"i":"one"}');
    expect(Number(await c.cmd('XLEN', deadKey))).toBeLessThanOrEqual(1);
    // Tightened with the fix: the odd letter went back first, as the event the sink saw (name '', empty payload).
    expect(added.map(([, f]) => f)).toEqual([
      ['n', '', 'p', ''],
      ['n', 'e', 'p', '{"i":"one"}'],
    ]);
    expect(Number(await c.cmd('XLEN', deadKey))).toBe(0);
  });

  it('a letter with some event fields (only a topic and a header) goes back with exactly those', async (ctx) => {
    const name = uniqueName('revAIodd');
    const deadKey = `pulse:stream:${name}:dead`;
    const s = new Stream(name, c.redis, { maxLen: 0 });
    ctx.onTestFinished(async () => {
      await s.destroy().catch(() => {});
      await c.cmd('DEL', deadKey);
    });
    await c.cmd('XADD', deadKey, '*', 't', 'eu', 'source_stream', name, 'h.k', 'v', 'source_sink', 'k', 'reason', 'x');
    expect(await replayDeadLetters(s)).toHaveLength(1);
    const added = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>;
    expect(added.map(([, f]) => f)).toEqual([['t', 'eu', 'h.k', 'v']]);
  });

  it('pulse-streaming dead replay replays the other letters (not exit 1 on the odd one, every time)', async (ctx) => {
    const { s } = await twoLetters((fn) => ctx.onTestFinished(fn));
    const r = await cli(['dead', 'replay', s.name, '--json']);
    // Before a fix: exit 1, "Wrong number of args calling Redis command from script".
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const fields = ((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>).map(([, f]) => f);
    expect(fields.filter((f) => f.includes('{"i":"one"}'))).toHaveLength(2);
  });
});
