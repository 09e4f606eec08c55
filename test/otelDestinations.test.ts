/**
 * What a registration keeps per stream name is bounded: a service making a
 * stream per job or session kept about 800 bytes per name it ever used (span
 * names, attributes, counts), for as long as it stayed registered, and each
 * metric collection walked them all (outside review B). Names unused for a
 * generation are forgotten; the streams in use keep their counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { destinationLimits } from '../packages/pulse-streaming/src/otel/attributes.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { forThisFile } from './support/forThisFile.js';
import { startSdk, type TestSdk } from './support/otelSdk.js';

const LIMIT = 20;
forThisFile(destinationLimits, 'perGeneration', LIMIT);
const CHURN = 200;

describe.each(CLIENT_KINDS)('otel: what is kept per stream name is bounded (%s)', (kind) => {
  let c: TestClient;
  let sdk: TestSdk;
  beforeAll(async () => {
    c = await connect(kind);
    sdk = startSdk();
  });
  afterAll(async () => {
    await sdk.shutdown();
    await c.close();
  });

  it(`${CHURN} short-lived streams next to one in use: at most two generations of ${LIMIT} series, the one in use counted in full`, async () => {
    const kept = new Stream(uniqueName('otelkept'), c.redis, { maxLen: 0 });
    const sink = await kept.newSink('w', { startAt: 'oldest', blockMs: 50 });
    let handled = 0;
    const ac = new AbortController();
    const run = sink.process(
      () => {
        handled++;
      },
      { signal: ac.signal },
    );
    try {
      for (let i = 0; i < CHURN; i++) {
        const s = new Stream(uniqueName('otelchurn'), c.redis, { maxLen: 0 });
        await s.add('e', 'x');
        await s.destroy();
        await kept.add('e', String(i));
      }
      await waitFor(() => handled === CHURN, { what: 'every event of the stream in use handled' });
      const metrics = await sdk.metrics();
      const sent = metrics.get('messaging.client.sent.messages')?.dataPoints ?? [];
      expect(sent.length).toBeLessThanOrEqual(2 * LIMIT);
      const keptSent = sent.find((p) => p.attributes['messaging.destination.name'] === kept.name);
      expect(keptSent?.value).toBe(CHURN);
      const consumed = metrics.get('messaging.client.consumed.messages')?.dataPoints ?? [];
      expect(consumed.find((p) => p.attributes['messaging.destination.name'] === kept.name)?.value).toBe(CHURN);
    } finally {
      ac.abort();
      await run;
      await sink.close();
      await kept.destroy();
    }
  });
});
