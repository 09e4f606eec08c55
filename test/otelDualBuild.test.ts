/**
 * The otel subpath ships an ESM and a CommonJS build, two copies of the
 * module in a process that loads both: a tracing bootstrap loaded with
 * `node --import ./tracing.mjs` (ESM: registerOpenTelemetry) and CommonJS
 * application code (`require('pulse-streaming/otel').contextOf`). The
 * registrations are kept process-wide (a `Symbol.for` key on globalThis):
 * contextOf of either copy uses the propagator registered through the other.
 * Runs the built files (`npm test` builds first).
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName } from './support/clients.js';
import { enableContext, startSdk } from './support/otelSdk.js';

const DIST = join(resolve(import.meta.dirname, '..'), 'packages/pulse-streaming/dist');

describe.each(CLIENT_KINDS)('otel: contextOf across the ESM and CJS builds (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
    enableContext();
  });
  afterAll(() => c.close());

  it("contextOf() of the CJS build reads the trace context the ESM build's registration wrote", async () => {
    const esm = await import(join(DIST, 'esm/index.js'));
    const esmOtel = await import(join(DIST, 'esm/otel/index.js'));
    const cjsOtel = createRequire(import.meta.url)(join(DIST, 'cjs/otel/index.js'));
    const sdk = startSdk(); // for its providers only
    sdk.unregister();
    const unregister = esmOtel.registerOpenTelemetry({
      tracerProvider: sdk.tracerProvider,
      meterProvider: sdk.meterProvider,
      propagator: new W3CTraceContextPropagator(),
    });
    const s = new esm.Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    try {
      const rs = reader.subscribe();
      await s.add('e', 'x');
      const [send] = sdk.named(`send ${s.name}`);
      const [ev] = await take(rs, 1);
      expect(trace.getSpanContext(esmOtel.contextOf(ev))?.spanId).toBe(send?.spanContext().spanId);
      expect(trace.getSpanContext(cjsOtel.contextOf(ev))?.spanId).toBe(send?.spanContext().spanId);
    } finally {
      unregister();
      await reader.close();
      await s.destroy();
      await sdk.shutdown();
    }
  });
});
