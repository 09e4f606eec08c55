/**
 * A sink that fails for good while a handler of `process()` or
 * `processBatch()` runs (here its stream's key replaced by a string:
 * WRONGTYPE) ends its subscriptions with the error. The run then rejected at
 * once, while the handler still ran and its in-progress touches were
 * stopped; the documented order is that a run ends after its in-flight
 * handlers finish (`sink.process` TSDoc), so that a caller awaiting it can
 * then close its client safely (outside review AD's suspicion, demonstrated).
 *
 * Failed before the fix: the run settled before the handler returned, both calls, both clients.
 * Fixed: `HandlerRun.drive` waits for the handlers it started also when the loop throws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sink, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)('a sink failing under a running handler (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const call of ['process', 'processBatch'] as const) {
    it(`${call}() rejects with the error once the handler returned, not before`, async (ctx) => {
      const s = new Stream(uniqueName('failunder'), c.redis, { maxLen: 0 });
      ctx.onTestFinished(async () => {
        await c.cmd('DEL', s.key);
      });
      const sink: Sink = await s.newSink('g', { blockMs: 100 });
      ctx.onTestFinished(() => sink.close());
      const order: string[] = [];
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      let entered = false;
      const handler = async (_ev: SinkEvent | SinkEvent[]): Promise<void> => {
        entered = true;
        await released;
        order.push('handler returned');
      };
      // Two slots: with one, the loop waits for the handler's slot, not on the subscription, and sees the error after it.
      const run = (
        call === 'process'
          ? sink.process(handler, { concurrency: 2 })
          : sink.processBatch(handler, { maxWaitMs: 10, concurrency: 2 })
      ).then(
        () => order.push('run resolved'),
        (e: Error) => order.push(`run rejected: ${e.message}`),
      );
      await s.add('e', 'x');
      await waitFor(() => entered, { what: 'the handler running' });
      // The stream's key becomes a string: the sink's next read is refused for good.
      await c.cmd('DEL', s.key);
      await c.cmd('SET', s.key, 'not a stream');
      await waitFor(() => sink.isClosed(), { what: 'the sink stopped' });
      release();
      await run;
      expect(order[0]).toBe('handler returned');
      expect(order[1]).toMatch(/^run rejected: .*holds another type/);
    });
  }
});
