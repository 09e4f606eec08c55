/**
 * Audit: registerOpenTelemetry TSDoc: "A sampler sees the attributes that name the operation and the
 * destination (messaging.system, messaging.operation.type and .name, messaging.destination.name,
 * messaging.consumer.group.name); the per-event ones (...) are set once the span records".
 */
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { AlwaysOnSampler, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { startSdk, type TestSdk } from './support/otelSdk.js';

class Recording implements Sampler {
  readonly seen: Array<{ name: string; attributes: Attributes }> = [];
  readonly #on = new AlwaysOnSampler();
  shouldSample(
    ctx: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    this.seen.push({ name, attributes: { ...attributes } });
    void [ctx, traceId, kind, links];
    return this.#on.shouldSample();
  }
  toString(): string {
    return 'Recording';
  }
}

const PER_EVENT = [
  'messaging.message.id',
  'messaging.client.id',
  'pulse.event.name',
  'pulse.delivery.count',
  'messaging.batch.message_count',
];

describe.each(CLIENT_KINDS)('audit: what a sampler sees (%s)', (kind) => {
  let c: TestClient;
  let sdk: TestSdk | undefined;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  afterEach(async () => {
    await sdk?.shutdown();
    sdk = undefined;
  });

  it('send and process spans: the naming attributes at sampling time, the per-event ones not yet', async () => {
    const sampler = new Recording();
    sdk = startSdk({ sampler });
    const s = new Stream(uniqueName('samp'), c.redis);
    const sink = await s.newSink('workers', { blockMs: 100 });
    const ac = new AbortController();
    let handled = 0;
    const run = sink.process(
      () => {
        handled++;
      },
      { signal: ac.signal },
    );
    await s.add('e', 'x');
    await waitFor(() => handled === 1, { what: 'handled' });
    ac.abort();
    await run;
    await sink.close();
    await s.destroy();
    const send = sampler.seen.find((x) => x.name === `send ${s.name}`);
    const proc = sampler.seen.find((x) => x.name === `process ${s.name}`);
    expect(send?.attributes).toMatchObject({
      'messaging.system': 'redis',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': s.name,
    });
    expect(proc?.attributes).toMatchObject({
      'messaging.system': 'redis',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': s.name,
      'messaging.consumer.group.name': 'workers',
    });
    for (const x of [send, proc]) for (const k of PER_EVENT) expect(x?.attributes, k).not.toHaveProperty(k);
    // ... and the recorded spans do carry them.
    const recorded = sdk.named(`process ${s.name}`)[0];
    expect(recorded?.attributes).toHaveProperty('messaging.message.id');
  });
});
