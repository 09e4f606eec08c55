/**
 * Tracing never changes which headers an add stores, beyond the trace
 * context it adds:
 * - they are read once, at the call: with an asynchronous schema, the
 *   traced add once copied them after the schema's await, so a headers
 *   object the caller changed right after calling add was stored changed;
 * - the 256-header limit applies to the caller's headers: the ones the
 *   instrumentation injects (`traceparent`, `tracestate`) do not count, so
 *   an add with 256 headers that succeeds untraced succeeds traced.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { headerFields, MAX_HEADERS, MAX_INJECTED_HEADERS } from '../packages/pulse-streaming/src/internal/headers.js';
import { CLIENT_KINDS, connect, take, uniqueName } from './support/clients.js';
import { startSdk } from './support/otelSdk.js';

const asyncSchema = {
  '~standard': {
    version: 1 as const,
    vendor: 'test',
    validate: async (value: unknown) => {
      await new Promise((r) => setTimeout(r, 10));
      return { value: value as { n: number } };
    },
  },
};

/** `n` headers `x-0`... `x-<n-1>`. */
function many(n: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < n; i++) headers[`x-${i}`] = 'v';
  return headers;
}

describe('what instrumentation adds is bounded too', () => {
  it('a traced add carries at most MAX_INJECTED_HEADERS more than the caller may pass', () => {
    expect(headerFields(many(MAX_HEADERS + MAX_INJECTED_HEADERS))).toHaveLength(2 * (MAX_HEADERS + MAX_INJECTED_HEADERS));
    expect(() => headerFields(many(MAX_HEADERS + MAX_INJECTED_HEADERS + 1))).toThrow(InvalidArgumentError);
    expect(() => headerFields(many(MAX_HEADERS + 1), MAX_HEADERS)).toThrow(`at most ${MAX_HEADERS} headers`);
  });
});

// Not concurrent: a registration of another test would trace this file's untraced adds.
describe.each(CLIENT_KINDS)('otel: the headers an add stores (%s)', (kind) => {
  for (const traced of [false, true]) {
    it(`are those passed at the call, whatever the caller changes afterwards (traced: ${traced})`, async () => {
      const c = await connect(kind);
      const sdk = traced ? startSdk() : undefined;
      const s = new Stream(uniqueName(), c.redis, { schemas: { e: asyncSchema } });
      const reader = await s.newReader({ blockMs: 100 });
      try {
        const rs = reader.subscribe();
        const headers: Record<string, string> = { step: '1' };
        Object.defineProperty(headers, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
        const first = s.add('e', { n: 1 }, { headers });
        headers.step = '2';
        const second = s.add('e', { n: 2 }, { headers });
        // Made invalid after the call: the add already read it.
        (headers as Record<string, unknown>).step = 3;
        await Promise.all([first, second]);
        const evs = await take(rs, 2);
        expect(evs.map((e) => e.headers.step)).toEqual(['1', '2']);
        for (const ev of evs) {
          expect(Object.hasOwn(ev.headers, '__proto__')).toBe(true);
          expect(ev.headers.traceparent !== undefined).toBe(traced);
        }
      } finally {
        await reader.close();
        await s.destroy();
        await sdk?.shutdown();
        await c.close();
      }
    });
  }

  it('256 headers (the most a caller may pass) succeed traced too; 257 fail either way', async () => {
    const c = await connect(kind);
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    let sdk: ReturnType<typeof startSdk> | undefined;
    try {
      const rs = reader.subscribe();
      await expect(s.add('e', 'untraced', { headers: many(256) })).resolves.toBeTypeOf('string');
      await expect(s.add('e', 'x', { headers: many(257) })).rejects.toThrow(InvalidArgumentError);
      sdk = startSdk();
      await expect(s.add('e', 'traced', { headers: many(256) })).resolves.toBeTypeOf('string');
      await expect(s.add('e', 'x', { headers: many(257) })).rejects.toThrow(InvalidArgumentError);
      const [, traced] = await take(rs, 2);
      expect(Object.keys(traced?.headers ?? {})).toHaveLength(257);
      expect(traced?.headers.traceparent).toBeDefined();
    } finally {
      await reader.close();
      await s.destroy();
      await sdk?.shutdown();
      await c.close();
    }
  });
});
