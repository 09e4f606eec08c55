/**
 * Codecs and schemas that fail in ways the contract allows (a throw of a
 * value String() cannot convert, a synchronous throw from validate, an answer
 * that is not a result): decoding is always a DecodeError (dead-lettered with
 * `decode:` under process()), encoding or validating on add always an
 * InvalidArgumentError, nothing added (outside review U, findings 5 and 9).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DecodeError,
  InvalidArgumentError,
  readDeadLetters,
  type StandardSchemaV1,
  Stream,
  type TypedStreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const schema = (validate: (v: unknown) => unknown): StandardSchemaV1 =>
  ({ '~standard': { version: 1, vendor: 'test', validate } }) as unknown as StandardSchemaV1;

/** Thrown by user code: String() of it throws (no toString, no Symbol.toPrimitive). */
const unprintable = (): unknown => Object.create(null);

describe.concurrent.each(CLIENT_KINDS)('codec and schema failures (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** A stream whose decode side fails as `failing` makes it fail; its producer only encodes. */
  async function oneEvent(
    onTestFinished: (fn: () => Promise<void>) => void,
    failing: TypedStreamOptions<Record<string, unknown>>,
  ) {
    const name = uniqueName('decfail');
    const s = new Stream<Record<string, unknown>>(name, c.redis, failing);
    onTestFinished(async () => {
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${name}:dead`);
    });
    await new Stream(name, c.redis).add('e', '{"a":1}');
    return s;
  }

  const decodeCases: Array<[string, TypedStreamOptions<Record<string, unknown>>]> = [
    [
      'a codec whose decode throws a null-prototype object',
      {
        codec: {
          encode: JSON.stringify,
          decode: () => {
            throw unprintable();
          },
        },
      },
    ],
    ['a schema whose validate answers undefined', { schemas: { e: schema(() => undefined) } }],
    ['a schema whose validate answers null asynchronously', { schemas: { e: schema(async () => null) } }],
    [
      'a schema whose validate rejects with a null-prototype object',
      { schemas: { e: schema(() => Promise.reject(unprintable())) } },
    ],
    ['a schema whose issues are not an array', { schemas: { e: schema(() => ({ issues: 'bad' })) } }],
  ];

  for (const [what, failing] of decodeCases) {
    it(`${what}: event.data throws DecodeError, process() dead-letters it with decode:`, async ({ onTestFinished }) => {
      const s = await oneEvent(onTestFinished, failing);
      const reader = await s.newReader({ startAt: 'oldest', blockMs: 50 });
      onTestFinished(() => reader.close());
      const [ev] = await take(reader.subscribe()[Symbol.asyncIterator](), 1);
      const err = await ev?.decode().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DecodeError);
      expect(() => ev?.data).toThrow(DecodeError);

      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 50 });
      onTestFinished(() => sink.close());
      const seen: unknown[] = [];
      void sink.process((e) => {
        seen.push(e.data);
      });
      await waitFor(async () => (await readDeadLetters(s)).length === 1 || seen.length > 0, {
        what: 'dead letter or handler call',
      });
      expect(seen).toEqual([]);
      const [dead] = await readDeadLetters(s);
      expect(dead?.reason).toMatch(/^decode: /);
    });
  }

  // The message names the event (its producer's name, of any length) and quotes what the codec said:
  // uncut, a 100k-character name was stored again in the dead letter's reason.
  for (const method of ['process', 'processBatch'] as const) {
    it(`${method}(): the decode: reason of a long event name and a long codec error is cut to 1024 characters`, async ({
      onTestFinished,
    }) => {
      const name = uniqueName('declong');
      const longName = `e${'\u{1F600}'.repeat(50_000)}`;
      const s = new Stream<Record<string, unknown>>(name, c.redis, {
        codec: {
          encode: JSON.stringify,
          decode: () => {
            throw new Error(`bad: ${'x'.repeat(200_000)}`);
          },
        },
      });
      onTestFinished(async () => {
        await s.destroy();
        await c.cmd('DEL', `pulse:stream:${name}:dead`);
      });
      await new Stream(name, c.redis).add(longName, '{"a":1}');
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 50 });
      onTestFinished(() => sink.close());
      const seen: unknown[] = [];
      if (method === 'process') void sink.process((e) => void seen.push(e));
      else void sink.processBatch((evs) => void seen.push(...evs));
      await waitFor(async () => (await readDeadLetters(s)).length === 1, { what: 'dead letter' });
      expect(seen).toEqual([]);
      const [dead] = await readDeadLetters(s);
      expect(dead?.eventName).toBe(longName);
      expect(dead?.reason).toMatch(/^decode: event /);
      expect(dead?.reason.length).toBeLessThanOrEqual(1024);
      expect(dead?.reason.endsWith('\u2026')).toBe(true);
      // Cut between whole characters: no half of a surrogate pair stored (it would read back as U+FFFD).
      expect(dead?.reason).not.toContain('\uFFFD');
    });
  }

  const addCases: Array<[string, TypedStreamOptions<Record<string, unknown>>]> = [
    [
      'a codec whose encode throws a null-prototype object',
      {
        codec: {
          encode: () => {
            throw unprintable();
          },
          decode: (b) => b,
        },
      },
    ],
    [
      'a schema whose validate throws',
      {
        schemas: {
          e: schema(() => {
            throw new Error('a refine callback threw');
          }),
        },
      },
    ],
    [
      'a schema whose validate throws a null-prototype object',
      {
        schemas: {
          e: schema(() => {
            throw unprintable();
          }),
        },
      },
    ],
    ['a schema whose validate answers undefined', { schemas: { e: schema(() => undefined) } }],
    ['a schema whose validate answers null asynchronously', { schemas: { e: schema(async () => null) } }],
    [
      'a schema whose validate rejects with a null-prototype object',
      { schemas: { e: schema(() => Promise.reject(unprintable())) } },
    ],
    ['a schema whose issue message is unprintable', { schemas: { e: schema(() => ({ issues: [{ message: unprintable() }] })) } }],
  ];

  for (const [what, failing] of addCases) {
    it(`${what}: add rejects with InvalidArgumentError, nothing added`, async ({ onTestFinished }) => {
      const s = new Stream<Record<string, unknown>>(uniqueName('encfail'), c.redis, failing);
      onTestFinished(() => s.destroy());
      await expect(s.add('e', { a: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(Number(await c.cmd('EXISTS', `pulse:stream:${s.name}`))).toBe(0);
    });
  }

  // A payload that is not JSON is bad input like any other: a typed error naming the event, not a
  // bare SyntaxError that says neither which event nor which stream.
  it('event.json() of a payload that is not JSON throws a DecodeError naming the event (cause: the SyntaxError)', async ({
    onTestFinished,
  }) => {
    const s = new Stream(uniqueName('badjson'), c.redis);
    onTestFinished(() => s.destroy());
    const id = await s.add('e', 'not json {');
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 50 });
    onTestFinished(() => reader.close());
    const [ev] = await take(reader.subscribe()[Symbol.asyncIterator](), 1);
    let err: unknown;
    try {
      ev?.json();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).eventId).toBe(id);
    expect((err as DecodeError).eventName).toBe('e');
    expect((err as DecodeError).message).toContain(id);
    expect((err as DecodeError).cause).toBeInstanceOf(SyntaxError);
  });

  // A Map's entries are not its properties: read as a record, every add went unvalidated.
  it('schemas given as a Map are refused when the stream is created (never ignored)', () => {
    const refuseAll: StandardSchemaV1 = {
      '~standard': { version: 1, vendor: 'test', validate: () => ({ issues: [{ message: 'refused' }] }) },
    };
    expect(() => new Stream(uniqueName('schemamap'), c.redis, { schemas: new Map([['e', refuseAll]]) as never })).toThrow(
      InvalidArgumentError,
    );
  });
});
