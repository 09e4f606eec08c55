/**
 * An OpenTelemetry SDK with in-memory exporters, for the tracing tests:
 * spans as they finish, metrics on demand (cumulative).
 */
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  type Sampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { registerOpenTelemetry } from '../../packages/pulse-streaming/src/otel/index.js';
import { enableContext } from './otelContext.js';

export interface TestSdk {
  readonly spans: () => ReadableSpan[];
  /** Finished spans named `name`. */
  readonly named: (name: string) => ReadableSpan[];
  /** The metrics collected now, by name. */
  readonly metrics: () => Promise<Map<string, MetricData>>;
  readonly tracerProvider: BasicTracerProvider;
  readonly meterProvider: MeterProvider;
  readonly unregister: () => void;
  shutdown(): Promise<void>;
}

export { enableContext };

/** Starts an SDK and registers the library's OpenTelemetry integration with it. */
export function startSdk(options: { sampler?: Sampler } = {}): TestSdk {
  enableContext();
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(options.sampler ? { sampler: options.sampler } : {}),
  });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const unregister = registerOpenTelemetry({ tracerProvider, meterProvider, propagator: new W3CTraceContextPropagator() });
  return {
    spans: () => exporter.getFinishedSpans(),
    named: (name) => exporter.getFinishedSpans().filter((s) => s.name === name),
    metrics: async () => {
      metricExporter.reset();
      await reader.forceFlush();
      const out = new Map<string, MetricData>();
      for (const rm of metricExporter.getMetrics())
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m);
      return out;
    },
    tracerProvider,
    meterProvider,
    unregister,
    async shutdown() {
      unregister();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** Sum of a counter's data points whose attributes include `match`; for a histogram, the sum of counts. */
export function total(m: MetricData | undefined, match: Record<string, unknown> = {}): number {
  if (!m) return 0;
  let n = 0;
  for (const dp of m.dataPoints) {
    if (!Object.entries(match).every(([k, v]) => dp.attributes[k] === v)) continue;
    if (m.dataPointType === DataPointType.HISTOGRAM) n += (dp.value as { count: number }).count;
    else n += dp.value as number;
  }
  return n;
}
