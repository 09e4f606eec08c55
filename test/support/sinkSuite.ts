/**
 * What the sink contract tests (test/sink*.test.ts split by topic) share: short
 * timings, raw views of a sink's Redis state, and per-test resources on one
 * client that are released when the test ends.
 */
import type { TestContext } from 'vitest';
import { type Sink, type SinkOptions, Stream, type StreamOptions } from '../../packages/pulse-streaming/src/index.js';
import { mapRecord as rec } from '../../packages/pulse-streaming/src/internal/replies.js';
import { type TestClient, uniqueName } from './clients.js';

/** Short grace and block so the suites stay fast; waits are conditions with generous timeouts. */
export const GRACE = 300;
export const BLOCK = 100;
export const WAIT = { timeout: 8000 };

/** The fields of one entry as a record, from a flat array or a RESP3 map. */
export function fieldsOf(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const arr = Array.isArray(flat) ? flat : Object.entries(rec(flat)).flat();
  for (let i = 0; i + 1 < arr.length; i += 2) out[String(arr[i])] = String(arr[i + 1]);
  return out;
}

/** The key of a sink's consumer liveness set on a stream. */
export function consumersKey(stream: Stream, sink: string): string {
  return `{${stream.key}}:sink:${sink}:consumers`;
}

/** Raw views of a sink's state and a per-test fixture, on the client `client()` returns when called. */
export function sinkSuite(client: () => TestClient) {
  const cmd = (...args: Array<string | number>) => client().cmd(...args);
  return {
    async pendingCount(key: string, group: string): Promise<number> {
      const r = (await cmd('XPENDING', key, group)) as unknown[];
      return Number(r[0]);
    },
    async pendingEntries(key: string, group: string): Promise<Array<{ id: string; consumer: string; deliveries: number }>> {
      const r = (await cmd('XPENDING', key, group, '-', '+', 1000)) as unknown[][];
      return r.map((e) => ({ id: String(e[0]), consumer: String(e[1]), deliveries: Number(e[3]) }));
    },
    async groups(key: string): Promise<Array<Record<string, unknown>>> {
      try {
        return ((await cmd('XINFO', 'GROUPS', key)) as unknown[]).map(rec);
      } catch {
        return []; // no such key
      }
    },
    async consumers(key: string, group: string): Promise<string[]> {
      try {
        return ((await cmd('XINFO', 'CONSUMERS', key, group)) as unknown[]).map((x) => String(rec(x).name));
      } catch {
        return []; // no such key or group
      }
    },
    async xlen(key: string): Promise<number> {
      return Number(await cmd('XLEN', key));
    },
    /** Per-test resources, released when the test ends (works for concurrent tests too). */
    fixture(ctx: TestContext) {
      const release: Array<() => Promise<unknown>> = [];
      ctx.onTestFinished(async () => {
        for (const f of release.reverse()) await f().catch(() => {});
      });
      return {
        stream(options?: StreamOptions): Stream {
          const s = new Stream(uniqueName('sink'), client().redis, options);
          release.push(() => s.destroy());
          return s;
        },
        async sink(stream: Stream, options?: SinkOptions, name = 'sink'): Promise<Sink> {
          const k = await stream.newSink(name, { blockMs: BLOCK, ackGracePeriodMs: GRACE, ...options });
          release.push(() => k.close());
          return k;
        },
        defer(f: () => Promise<unknown>): void {
          release.push(f);
        },
      };
    },
  };
}
