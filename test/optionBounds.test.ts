/**
 * Whole-number options have an upper bound. dedupWindowMs and ttlMs of a value Redis cannot
 * take as an expiry (Number.MAX_VALUE, 1e21, 2 ** 63) were accepted by new Stream; then every
 * add with a dedupId rejected with a plain PulseError ("ERR value is not an integer or out of
 * range") AFTER the script's XADD ran: stored although the add rejected (README: "An add that
 * rejects with a Redis error ... was not stored"). Now they are an InvalidArgumentError, up to
 * Number.MAX_SAFE_INTEGER, which Redis takes; maxWaitMs (a timer) stops at 2^31-1 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

describe.each(CLIENT_KINDS)('option upper bounds (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const [option, value] of [
    ['dedupWindowMs', Number.MAX_VALUE],
    ['dedupWindowMs', 2 ** 63],
    ['dedupWindowMs', Number.MAX_SAFE_INTEGER + 1],
    ['ttlMs', 1e21],
    ['maxLen', 2 ** 64],
  ] as const) {
    it(`${option}: ${value} is an InvalidArgumentError`, () => {
      expect(() => new Stream(uniqueName('bounds'), c.redis, { [option]: value })).toThrow(InvalidArgumentError);
    });
  }

  it('dedupWindowMs and ttlMs of Number.MAX_SAFE_INTEGER: Redis takes them, the add stores its event', async () => {
    const s = new Stream(uniqueName('bounds'), c.redis, {
      dedupWindowMs: Number.MAX_SAFE_INTEGER,
      ttlMs: Number.MAX_SAFE_INTEGER,
    });
    try {
      const id = await s.add('e', 'x', { dedupId: 'd' });
      expect(await s.add('e', 'y', { dedupId: 'd' })).toBe(id);
      expect(Number(await c.cmd('XLEN', s.key))).toBe(1);
    } finally {
      await s.destroy().catch(() => {});
    }
  });

  it('processBatch maxWaitMs past 2^31-1 ms (a timer would fire after 1 ms) and retry delays past MAX_SAFE_INTEGER are InvalidArgumentErrors', async () => {
    const s = new Stream(uniqueName('bounds'), c.redis);
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100 });
    try {
      await expect(sink.processBatch(async () => {}, { maxWaitMs: 2 ** 31 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(sink.process(async () => {}, { retry: { delayMs: 1e21 } })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(sink.process(async () => {}, { retry: { maxDelayMs: 2 ** 63 } })).rejects.toBeInstanceOf(InvalidArgumentError);
      // blockMs also times the library's own waits: past 2^31-1 a timer fires after 1 ms.
      await expect(s.newSink('g2', { blockMs: 2 ** 31 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.newReader({ blockMs: 2 ** 31 })).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await sink.close();
      await s.destroy().catch(() => {});
    }
  });
});
