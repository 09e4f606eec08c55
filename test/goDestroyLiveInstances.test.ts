/**
 * Go Pulse v1.10's `Destroy` of a stream that live Node producers and sinks
 * share with Go services: from then on Go services use
 * `pulse:stream:<name>:generation:2` and this library keeps using
 * `pulse:stream:<name>` (README "Using it with Go services"), so the two
 * sides no longer see each other's events. Checks that a `Stream` instance
 * already running then says so (a `warn` line, as an instance that meets such
 * a record at its first look does), when its sink finds the key gone or its
 * group missing; before, running instances never looked at the record again
 * and the split was silent (outside review I, finding 3). With real Go
 * processes, then without Go (a `DEL` and an `HSET` of the record do what Go
 * does) so it runs everywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
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
    "after Go's Destroy, a live Node sink's instance says that Go moved to generation 2",
    async () => {
      const name = uniqueName('livesplit');
      const rec = recordingLogger();
      const producer = new Stream(name, c.redis, { logger: rec.logger });
      const consumer = new Stream(name, c.redis, { logger: rec.logger });
      const sink = await consumer.newSink('node', { startAt: 'oldest', ackGracePeriodMs: 2000 });
      const sub = sink.subscribe();
      try {
        const before = await producer.add('before', 'b');
        const [got] = await take(sub, 1, 10_000);
        expect(got?.id).toBe(before);
        await got?.ack();

        // A Go service destroys the stream and goes on producing (generation 2).
        await runGo(bin, ['destroy', ...on(name)], undefined, 'destroyed');
        await runGo(bin, ['add', ...on(name)], [{ name: 'go-after', payload: Buffer.from('g') }], 'added');
        expect(Number(await c.cmd('XLEN', `${producer.key}:generation:2`))).toBe(1);

        // The live Node producer goes on too: its event lands on a key Go no longer reads...
        const after = await producer.add('after', 'a');
        const [next] = await take(sub, 1, 10_000);
        expect(next?.id).toBe(after);
        await next?.ack();

        // ...so the instance must say so (README: each Stream instance that meets such a record says so once):
        // its sink finds its group gone with the key, and looks at the record again.
        const diverged = () =>
          rec.lines.filter((l) => l.level === 'warn' && /Go Pulse destroyed it|generation/.test(l.msg ?? ''));
        await waitFor(() => diverged().length > 0, { timeout: 5000, what: 'a warning that Go moved the stream to generation 2' });
      } finally {
        await sink.close();
        await producer.destroy();
        await c.cmd('DEL', `${producer.key}:generation:2`, `${producer.key}:lifecycle`);
      }
    },
    T,
  );
});

describe.each(CLIENT_KINDS)('a live sink meets a record Go moved elsewhere, without Go (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c?.close());

  it('the key deleted and the record moved to generation 2 under a running instance: it warns once', async () => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('livesplit'), c.redis, { logger: rec.logger });
    const sink = await s.newSink('node', { startAt: 'oldest', ackGracePeriodMs: 2000 });
    const sub = sink.subscribe();
    const said = () => rec.lines.filter((l) => l.level === 'warn' && /Go Pulse destroyed it/.test(l.msg ?? ''));
    try {
      await s.add('before', 'b');
      const [got] = await take(sub, 1, 10_000);
      await got?.ack();
      expect(said()).toHaveLength(0);
      // What Go's Destroy and Go's next writer do: the key deleted, the record at generation 2.
      await c.cmd('DEL', s.key);
      const record = ['generation', '2', 'state', 'active', 'physical_key', `${s.key}:generation:2`];
      await c.cmd('HSET', `${s.key}:lifecycle`, ...record);
      const after = await s.add('after', 'a');
      const [next] = await take(sub, 1, 10_000);
      expect(next?.id).toBe(after);
      await next?.ack();
      await waitFor(() => said().length > 0, { timeout: 5000, what: 'a warning that Go moved the stream' });
      // Once per instance: another gone key says nothing more.
      await c.cmd('DEL', s.key);
      const again = await s.add('again', 'a');
      const [last] = await take(sub, 1, 10_000);
      expect(last?.id).toBe(again);
      await last?.ack();
      expect(said()).toHaveLength(1);
    } finally {
      await sink.close();
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  });
});
