/**
 * Options of the sink given to `process()`, `processBatch()` or their
 * `retry` were accepted and ignored, because an option of another call is
 * left alone (test/optionNames.test.ts): `maxDeliveries` next to the backoff
 * (where a job queue's `attempts` goes) left failing events retried for
 * ever, in silence (outside review AD's suspicion). They are refused with an
 * `InvalidArgumentError` naming newSink(), before any Redis call.
 *
 * Failed before the fix: each call accepted (and the events retried without a dead letter).
 * Fixed: `refuseSinkOnly` (optionNames.ts) in `runSettings` and `retrySettings`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProcessOptions, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';
import { refusal } from './support/refusal.js';

/** Options as a plain JavaScript caller (or a config file) passes them: any names. */
const js = (options: Record<string, unknown>): ProcessOptions => options as ProcessOptions;

describe.each(CLIENT_KINDS)('sink options given to a handler run (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('maxDeliveries, ackGracePeriodMs or noAck in process(), processBatch() or retry is refused', async (ctx) => {
    const s = new Stream(uniqueName('sinkonly'), c.redis);
    const sink = await s.newSink('g');
    ctx.onTestFinished(async () => {
      await sink.close();
      await s.destroy();
    });
    const h = (_: SinkEvent | SinkEvent[]): void => {};
    expect(await refusal(() => sink.process(h, js({ maxDeliveries: 3 })))).toBe(
      'process options have no maxDeliveries: it is an option of newSink() and would be ignored here',
    );
    expect(await refusal(() => sink.process(h, js({ retry: { delayMs: 100, maxDeliveries: 3 } })))).toBe(
      'retry options have no maxDeliveries: it is an option of newSink() and would be ignored here',
    );
    expect(await refusal(() => sink.processBatch(h, js({ ackGracePeriodMs: 60_000 })))).toBe(
      'processBatch options have no ackGracePeriodMs: it is an option of newSink() and would be ignored here',
    );
    expect(await refusal(() => sink.process(h, js({ noAck: true })))).toMatch(/no noAck: it is an option of newSink/);
    // An option of another call that changes nothing here is still left alone (optionNames.ts).
    const ac = new AbortController();
    ac.abort();
    await sink.process(h, js({ signal: ac.signal, topic: 'orders' }));
  });
});
