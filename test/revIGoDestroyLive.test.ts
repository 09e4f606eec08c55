/**
 * revI: Go Pulse v1.10's `Destroy` of a stream that live Node producers and
 * sinks share with Go services. From then on Go services use
 * `pulse:stream:<name>:generation:2` and this library keeps using
 * `pulse:stream:<name>` (README "Using it with Go services"): the two sides
 * no longer see each other's events. README promises that "each `Stream`
 * instance that meets such a record says so once"; the instances that were
 * already running when Go destroyed the stream never look again, so the
 * split is silent: Node's next events go to a key no Go service reads, and
 * Go's go where no Node sink reads.
 */
import { beforeAll, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
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
    "after Go's Destroy, a live Node producer and a live Node sink say that Go moved to generation 2",
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

        // ...so one of them must say so (README: each Stream instance that meets such a record says so once).
        // Today neither does: the sink only says its key is gone, then reads the key Go left.
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
