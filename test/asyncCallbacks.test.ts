/**
 * Callbacks that must answer synchronously, written async (plain JavaScript,
 * or a callback typed loosely): a codec's `encode` and a reader's or sink's
 * `filter`. Their promise is refused as a throw is (the codec TSDoc: "a
 * promise is refused the same way"; the filter TSDoc: "a filter that throws
 * rejects the event"), and its rejection is handled: left unhandled it ends
 * a Node process by default. Before (outside review E of 2026-12-05): an
 * encode's rejected promise escaped unhandled after the add had rejected; an
 * async filter's promise was truthy, so every event passed it, and its
 * rejection escaped too.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Event, InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor } from './support/clients.js';

// Not concurrent: the listener sees every unhandled rejection of the worker.
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => void process.off('unhandledRejection', onUnhandled));

/** Node reports an unhandled rejection after the microtasks of the turn that left it: a few turns. */
async function turns(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

describe.each(CLIENT_KINDS)('a codec whose encode answers a promise (%s)', (kind) => {
  for (const how of ['rejecting', 'resolving'] as const) {
    it(`${how}: the add rejects with InvalidArgumentError, nothing is stored, no rejection escapes`, async ({
      onTestFinished,
    }) => {
      const c = await connect(kind);
      onTestFinished(() => c.close());
      const codec = {
        encode: async (v: unknown) => {
          if (how === 'rejecting') throw new Error('async encode failed');
          return JSON.stringify(v);
        },
        decode: (b: Buffer) => b,
      };
      const s = new Stream<Record<string, unknown>>(uniqueName('asyncenc'), c.redis, { codec: codec as never });
      onTestFinished(() => s.destroy());
      const err = await s.add('e', { a: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/must be synchronous/);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      await turns();
      expect(unhandled.map(String)).toEqual([]);
    });
  }
});

describe.each(CLIENT_KINDS)('an async filter (%s)', (kind) => {
  for (const what of ['reader', 'sink'] as const) {
    it(`${what}: every event is refused as by a throwing filter, said at error; no rejection escapes`, async ({
      onTestFinished,
    }) => {
      const c = await connect(kind);
      onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('asyncflt'), c.redis, { maxLen: 0, logger });
      onTestFinished(() => s.destroy());
      const filter = (async (e: Event) => {
        if (e.text() === 'bad') throw new Error('async filter failed');
        return true;
      }) as unknown as (e: Event) => boolean;
      const src =
        what === 'reader'
          ? await s.newReader({ startAt: 'oldest', blockMs: 100, filter })
          : await s.newSink('g', { startAt: 'oldest', blockMs: 100, filter });
      onTestFinished(() => src.close());
      await s.add('e', 'bad');
      await s.add('e', 'good');
      // Reading starts with a subscription.
      src.subscribe();
      await waitFor(() => lines.filter((l) => l.level === 'error' && /filter threw/.test(l.msg ?? '')).length === 2);
      const refused = lines.filter((l) => /filter threw/.test(l.msg ?? ''));
      expect(refused.map((l) => String((l.obj as { err?: unknown }).err))).toEqual([
        expect.stringMatching(/filters must answer synchronously/),
        expect.stringMatching(/filters must answer synchronously/),
      ]);
      // Both were judged (the filter runs before an event is handed to a subscription): neither was.
      expect(src.counters.delivered).toBe(0);
      await turns();
      expect(unhandled.map(String)).toEqual([]);
    });
  }
});

/*
 * An add whose asynchronous schema refuses the value while an earlier add's schema is still
 * validating: before, the refusal was a promise nothing handled until the earlier one answered (the
 * later add waits for it to keep adds in order), an unhandled rejection though the caller handled
 * the add's own promise (a review of the add path; both clients failed).
 */
/** A Standard Schema that answers after `ms`, accepting or refusing every value. */
function slowSchema(ms: number, accept: boolean) {
  return {
    '~standard': {
      version: 1 as const,
      vendor: 'test',
      validate: (value: unknown) =>
        new Promise((resolve) => setTimeout(() => resolve(accept ? { value } : { issues: [{ message: 'refused' }] }), ms)),
    },
  };
}

describe.each(CLIENT_KINDS)('an async schema refusing behind a slower one (%s)', (kind) => {
  it('the later add rejects with InvalidArgumentError, the earlier is stored, no rejection escapes', async ({
    onTestFinished,
  }) => {
    const c = await connect(kind);
    onTestFinished(() => c.close());
    const s = new Stream<Record<string, unknown>>(uniqueName('asyncRefusedBehind'), c.redis, {
      maxLen: 0,
      schemas: { slow: slowSchema(200, true), fast: slowSchema(10, false) } as never,
    });
    onTestFinished(() => s.destroy());
    const first = s.add('slow', { a: 1 });
    // Handled at once: only the library's own promises can be left unhandled.
    const second = s.add('fast', { b: 1 }).catch((e: unknown) => e);
    expect(typeof (await first)).toBe('string');
    const err = await second;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/refused/);
    expect(Number(await c.cmd('XLEN', s.key))).toBe(1);
    await turns();
    expect(unhandled.map(String)).toEqual([]);
  });
});
