/**
 * A stream with `retention: 'interest'` shared with a Go Pulse v1.10 producer
 * created without options, which adopts the lifecycle record this library
 * wrote. Checks that the Go producer trims nothing a Node sink has not acked
 * (API.md: 'interest' means "trimming never removes an entry that a sink of
 * the stream has not yet acked"): the record says unbounded (`max=0`), not
 * `max=<maxLen>`, which made Go trim exactly to maxLen on every XADD (outside
 * review I, finding 2). The record itself, without Go:
 * test/interopLifecycleRecord.test.ts.
 */
import { beforeAll, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { type TestClient, uniqueName } from './support/clients.js';
import { runGo } from './support/goInterop.js';
import { describeGoVersions } from './support/goSuite.js';

const T = 60_000;

await describeGoVersions((g) => {
  const { bin, lifecycle, on } = g;
  let c: TestClient;
  beforeAll(() => {
    c = g.c;
  });

  it.runIf(lifecycle)(
    "retention 'interest': a Go producer adopting the record we wrote never trims what a Node sink has not acked",
    async () => {
      const name = uniqueName('interest');
      const s = new Stream(name, c.redis, { retention: 'interest', maxLen: 5 });
      // A Node sink that has read nothing yet: under 'interest' none of its events may be trimmed.
      const sink = await s.newSink('node', { startAt: 'oldest' });
      try {
        const first = await s.add('node', 'n0');
        // Control: our own producer keeps every entry the sink has not acked (past maxLen).
        for (let i = 1; i < 10; i++) await s.add('node', `n${i}`);
        expect(Number(await c.cmd('XLEN', s.key))).toBe(10);

        // A Go producer configured without options: it adopts the record this library wrote.
        const specs = Array.from({ length: 10 }, (_, i) => ({ name: 'go', payload: Buffer.from(`g${i}`) }));
        expect(await runGo(bin, ['add', ...on(name)], specs, 'added')).toHaveLength(10);

        // Nothing acked by the sink: all 20 entries must still be there, the first included.
        const left = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, unknown]>;
        expect({ length: left.length, first: String(left[0]?.[0]) }).toEqual({ length: 20, first });
      } finally {
        await sink.close();
        await s.destroy();
        await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
      }
    },
    T,
  );
});
