/**
 * readDeadLetters / replayDeadLetters refuse bad arguments with InvalidArgumentError before any
 * Redis call (API.md "Errors"), as add, newSink, newReader and remove do for JavaScript callers:
 * `ids` that is not an array (was a TypeError), a first argument that is not a Stream (was a
 * PulseError wrapping a TypeError), a `sink` that breaks the sink-name rule ('', 'a b', a number:
 * replayed nothing and resolved []), options that are not an object (were ignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, readDeadLetters, replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

async function outcome(f: () => Promise<unknown>): Promise<unknown> {
  try {
    await f();
    return 'resolved';
  } catch (err) {
    return err;
  }
}

describe.concurrent.each(CLIENT_KINDS)('dead-letter functions refuse bad arguments (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const cases: Array<[string, (s: Stream) => Promise<unknown>]> = [
    ['readDeadLetters ids as a string', (s) => readDeadLetters(s, { ids: '1-0' as never })],
    ['replayDeadLetters ids as a string', (s) => replayDeadLetters(s, { ids: '1-0' as never })],
    ['readDeadLetters of something that is not a Stream', () => readDeadLetters({} as never)],
    ['replayDeadLetters of something that is not a Stream', () => replayDeadLetters({} as never)],
    ["replayDeadLetters sink ''", (s) => replayDeadLetters(s, { sink: '' })],
    ["replayDeadLetters sink 'a b' (a space: not a sink name)", (s) => replayDeadLetters(s, { sink: 'a b' })],
    ['replayDeadLetters sink 42', (s) => replayDeadLetters(s, { sink: 42 as never })],
    ["readDeadLetters options 'billing'", (s) => readDeadLetters(s, 'billing' as never)],
    ["replayDeadLetters options 'billing'", (s) => replayDeadLetters(s, 'billing' as never)],
  ];
  for (const [label, call] of cases) {
    it(`${label}: InvalidArgumentError`, async () => {
      const s = new Stream(uniqueName('dl-args'), c.redis);
      expect(await outcome(() => call(s))).toBeInstanceOf(InvalidArgumentError);
    });
  }
});
