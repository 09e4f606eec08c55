/**
 * Strings that are not valid UTF-16 (lone surrogates, e.g. from slicing text at a code unit)
 * were accepted and silently changed to U+FFFD on the wire. For dedupId this made two
 * different IDs the same record: the second add added nothing and resolved to the first's ID.
 * Header values, event names and topics came back different from what was added. Each is now
 * an InvalidArgumentError before any Redis call, as are stream, sink and topic-filter names,
 * and string payloads (bytes go as a Buffer, bit for bit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName } from './support/clients.js';

describe.each(CLIENT_KINDS)('lone surrogates (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('two different dedupIds with lone surrogates are InvalidArgumentErrors: never merged, nothing stored', async () => {
    const s = new Stream(uniqueName('surrogate'), c.redis, { maxLen: 0 });
    try {
      await expect(s.add('e', 'x', { dedupId: 'order-\uD800' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.add('e', 'x', { dedupId: 'order-\uD801' })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      // A surrogate pair is a character like any other.
      const a = await s.add('e', 'x', { dedupId: 'order-\uD83D\uDE00' });
      const b = await s.add('e', 'x', { dedupId: 'order-\uD83D\uDE01' });
      expect(b).not.toBe(a);
    } finally {
      await s.destroy();
    }
  });

  it('a header value, event name or topic with a lone surrogate is an InvalidArgumentError; well-formed ones read back as added', async () => {
    const s = new Stream(uniqueName('surrogate'), c.redis, { maxLen: 0 });
    try {
      await expect(s.add('e', 'x', { headers: { k: 'a\uDC00b' } })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.add('e\uD800', 'x')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.add('e', 'x', { topic: '\uDFFFt' })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      await s.add('é\uD83D\uDE00', 'x', { topic: 't\uD83D\uDE00', headers: { k: 'a\uD83D\uDE00b' } });
      const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
      try {
        for await (const ev of reader) {
          expect([ev.eventName, ev.topic, ev.headers.k]).toEqual(['é\uD83D\uDE00', 't\uD83D\uDE00', 'a\uD83D\uDE00b']);
          break;
        }
      } finally {
        await reader.close();
      }
    } finally {
      await s.destroy();
    }
  });

  it('a string payload with a lone surrogate is an InvalidArgumentError (it would not round-trip); its bytes as a Buffer do', async () => {
    const s = new Stream(uniqueName('surrogate'), c.redis, { maxLen: 0 });
    try {
      await expect(s.add('e', 'half \uDC00 a pair')).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      const text = 'whole \uD83D\uDE00 pair';
      const bytes = Buffer.from([0xed, 0xb0, 0x80, 0xff]);
      await s.add('e', text);
      await s.add('e', bytes);
      const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
      try {
        const got = await take(reader.subscribe(), 2);
        expect(got[0]?.text()).toBe(text);
        expect(Buffer.compare(got[1]?.payload ?? Buffer.alloc(0), bytes)).toBe(0);
      } finally {
        await reader.close();
      }
    } finally {
      await s.destroy();
    }
  });

  it('stream, sink and topic-filter names with a lone surrogate are InvalidArgumentErrors', async () => {
    expect(() => new Stream(`${uniqueName('surrogate')}\uD800`, c.redis)).toThrow(InvalidArgumentError);
    const s = new Stream(uniqueName('surrogate'), c.redis, { maxLen: 0 });
    try {
      await expect(s.newSink('g\uDC00')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.newSink('g', { topic: 'x\uD800' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.newReader({ topic: 'x\uD800' })).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await s.destroy();
    }
  });
});
