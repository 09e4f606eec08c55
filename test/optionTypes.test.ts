/**
 * What the published `.d.ts` lets a strict TypeScript app write (the packed
 * package, test/support/packedApp.ts, compiled with the repository's tsc):
 * - with `exactOptionalPropertyTypes`, options whose properties may be
 *   `undefined` (read from a config) compile, as the runtime takes
 *   `undefined` as the default (shown first with plain JavaScript);
 * - read-only arrays are taken where the library only reads them (the `ids`
 *   of `readDeadLetters` and `replayDeadLetters`);
 * - `new Stream<Events>(name, redis)` with an event map but neither `codec`
 *   nor `schemas` does not compile: such a stream is untyped at run time
 *   (`add` refuses the values, `event.data` is the payload's bytes);
 * - generic code still compiles (review L): a factory forwarding its caller's
 *   `options?: StreamOptions<E>` (or `= {}`) to `new Stream<E>(...)`, and an
 *   interface extending `StreamOptions` (of a map or of a type parameter).
 * Outside review K, except the last.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PackedApp, packedApp, TSC } from './support/packedApp.js';

let app: PackedApp;

/** The TypeScript files of the cases below, compiled together by one tsc run in beforeAll (one program, not four: each run costs seconds of CPU). */
const sources = new Map<string, string>();
const source = (name: string, text: string): void => void sources.set(name, text);
/** tsc's diagnostics, by file name. */
let diagnostics = new Map<string, string[]>();
/** The diagnostics of `names`, one per line ('' when none). */
const problems = (...names: string[]): string => names.flatMap((n) => diagnostics.get(n) ?? []).join('\n');

const STRICT = ['--strict', '--noEmit', '--skipLibCheck', '--types', 'node', '--target', 'es2022', '--noUncheckedIndexedAccess'];

beforeAll(() => {
  app = packedApp('pulse-option-types-');
  for (const [name, text] of sources) app.write(name, text);
  const r = app.run(process.execPath, [
    TSC,
    ...STRICT,
    '--exactOptionalPropertyTypes',
    '--module',
    'nodenext',
    ...sources.keys(),
  ]);
  diagnostics = new Map();
  let current = '';
  for (const line of r.out.split('\n')) {
    // `file.mts(12,3): error TS2345: ...`, then indented continuation lines of the same message.
    const file = /^([\w.]+)\(\d+,\d+\): /.exec(line)?.[1];
    if (file !== undefined) current = file;
    if (line.trim() !== '') diagnostics.set(current, [...(diagnostics.get(current) ?? []), line]);
  }
  // Whatever tsc says outside a file (an option it refuses, a crash) fails every case.
  expect(diagnostics.get('') ?? [], r.out).toEqual([]);
}, 60_000);

afterAll(() => {
  app?.remove();
});

describe('the published types, as a strict TypeScript app (exactOptionalPropertyTypes on) compiles against them', () => {
  const body = (imp: string) => `${imp}
import { Redis } from 'ioredis';
interface Config { maxLen?: number | undefined; topic?: string | undefined; deadLetterStream?: string | undefined; concurrency?: number | undefined; signal?: AbortSignal | undefined }
declare const cfg: Config;
export async function main(): Promise<void> {
  const stream = new Stream('orders', new Redis({ lazyConnect: true }), { maxLen: cfg.maxLen });
  await stream.add('order.created', 'x', { topic: cfg.topic });
  const reader = await stream.newReader({ topic: cfg.topic });
  reader.subscribe({ signal: cfg.signal });
  const sink = await stream.newSink('billing', { deadLetterStream: cfg.deadLetterStream });
  await sink.process(async (ev) => ev.ack(), { concurrency: cfg.concurrency, signal: cfg.signal });
}
`;
  source('exact.mts', body("import { Stream } from 'pulse-streaming';"));
  source('exact.cts', body("import pulse = require('pulse-streaming');\nimport Stream = pulse.Stream;"));
  it('exactOptionalPropertyTypes: options read from config (possibly undefined) compile, as the runtime accepts them', () => {
    // Plain JS first: the runtime takes an undefined option as its default (no error, no Redis call needed).
    app.write(
      'undef.mjs',
      `import { Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
const redis = new Redis({ lazyConnect: true });
new Stream('a', redis, { maxLen: undefined, logger: undefined, ttlMs: undefined, retention: undefined, dedupWindowMs: undefined, codec: undefined });
console.log('ok');
redis.disconnect();
`,
    );
    expect(app.run(process.execPath, ['undef.mjs']).out).toBe('ok\n');
    expect(problems('exact.mts', 'exact.cts')).toBe('');
  }, 60_000);

  // Each property read from a value that may be undefined (`u<T>()`), as from a config object.
  source(
    'exactAll.mts',
    `import { consoleLogger, readDeadLetters, replayDeadLetters, Stream, type Codec, type Logger, type Retention, type StartAt } from 'pulse-streaming';
import { registerOpenTelemetry } from 'pulse-streaming/otel';
import type { MeterProvider, TextMapPropagator, TracerProvider } from '@opentelemetry/api';
import { Redis } from 'ioredis';
declare function u<T>(): T | undefined;
export async function main(): Promise<void> {
  const stream = new Stream('orders', new Redis({ lazyConnect: true }), {
    maxLen: u<number>(), logger: u<Logger>(), ttlMs: u<number>(), slidingTtl: u<boolean>(), retention: u<Retention>(),
    dedupWindowMs: u<number>(), codec: u<Codec>(), schemas: u<{}>(),
  });
  await stream.add('e', 'x', { topic: u<string>(), onlyIfStreamExists: u<boolean>(), headers: u<Record<string, string>>(), dedupId: u<string>() });
  const reader = await stream.newReader({
    startAt: u<StartAt>(), blockMs: u<number>(), maxPolled: u<number>(), bufferSize: u<number>(), topic: u<string>(), filter: u<() => boolean>(),
  });
  await reader.addStream(stream, { startAt: u<StartAt>() });
  const sink = await stream.newSink('billing', {
    noAck: u<boolean>(), ackGracePeriodMs: u<number>(), maxDeliveries: u<number>(), deadLetterStream: u<string>(),
  });
  for await (const ev of sink.subscribe({ signal: u<AbortSignal>() })) await ev.nack({ delayMs: u<number>() });
  await sink.process(async (ev) => ev.ack(), {
    concurrency: u<number>(), signal: u<AbortSignal>(),
    retry: { delayMs: u<number>(), factor: u<number>(), maxDelayMs: u<number>(), jitter: u<number>() },
  });
  await sink.process(async (ev) => ev.ack(), { retry: u<false>() });
  await sink.processBatch(async () => {}, { maxBatch: u<number>(), maxWaitMs: u<number>(), concurrency: u<number>(), signal: u<AbortSignal>() });
  await readDeadLetters(stream, { deadLetterStream: u<string>(), count: u<number>(), after: u<string>(), ids: u<string[]>() });
  await replayDeadLetters(stream, { deadLetterStream: u<string>(), ids: u<string[]>(), sink: u<string>() });
  consoleLogger({ level: u<'info'>(), console: u<Console>(), bindings: u<Record<string, unknown>>() });
  registerOpenTelemetry({ tracerProvider: u<TracerProvider>(), meterProvider: u<MeterProvider>(), propagator: u<TextMapPropagator>() });
}
`,
  );
  it('exactOptionalPropertyTypes: every option of every public options type may be undefined', () => {
    expect(problems('exactAll.mts')).toBe('');
  }, 60_000);

  // deadLetters.ts only reads `ids` (Array.isArray, map, spread): a `readonly string[]` (a selection
  // kept in a frozen config, a function returning ReadonlyArray) is refused at compile time.
  source(
    'ro.mts',
    `import { readDeadLetters, replayDeadLetters, Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
declare const selected: readonly string[];
export async function main(): Promise<void> {
  const stream = new Stream('orders', new Redis({ lazyConnect: true }));
  await readDeadLetters(stream, { ids: selected });
  await replayDeadLetters(stream, { ids: selected, sink: 'billing' });
  await replayDeadLetters(stream, { ids: ['1-0', '2-0'] as const });
}
`,
  );
  it('readonly arrays are accepted where the library only reads them (dead-letter ids)', () => {
    expect(problems('ro.mts')).toBe('');
  }, 60_000);

  // With the event map and no codec, `add` is typed to take the values (every call rejects at run time:
  // "payload must be a Uint8Array, Buffer or string") and `ev.data` is typed as the value while it is
  // the raw Buffer: `ev.data.id` is undefined, silently. API.md: "Without a codec the stream is untyped".
  source(
    'nocodec.mts',
    `import { Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
type OrderEvents = { 'order.created': { id: number } };
const redis = new Redis({ lazyConnect: true });
// @ts-expect-error a typed stream needs a codec (or schemas)
export const orders = new Stream<OrderEvents>('orders', redis);
// @ts-expect-error a typed stream needs a codec (or schemas)
export const orders2 = new Stream<OrderEvents>('orders', redis, { maxLen: 10 });
export const ok = new Stream<OrderEvents>('orders', redis, { codec: 'json' });
`,
  );
  // Review L: ordinary generic code, which the check above must not break (b083279 did: TS2345, TS2322,
  // TS2312). Where the event map is a type parameter the options are taken as they are.
  source(
    'compat.mts',
    `import { Stream, type EventMap, type RedisClient, type StreamOptions, type Untyped } from 'pulse-streaming';
export function makeStream<E extends EventMap = Untyped>(name: string, redis: RedisClient, options?: StreamOptions<E>): Stream<E> {
  return new Stream<E>(name, redis, options);
}
export function withDefault<E extends EventMap = Untyped>(name: string, redis: RedisClient, options: StreamOptions<E> = {}): Stream<E> {
  return new Stream<E>(name, redis, options);
}
type Orders = { 'order.created': { id: string } };
export interface OrderStreamOptions extends StreamOptions<Orders> { redisUrl: string }
export interface ServiceStreamOptions<E extends EventMap> extends StreamOptions<E> { redisUrl: string }
export const cfg: OrderStreamOptions = { codec: 'json', redisUrl: 'redis://localhost' };
`,
  );
  it('a Stream typed with an event map but no codec does not compile (its events would be untyped at run time); generic code does', () => {
    expect(problems('nocodec.mts', 'compat.mts')).toBe('');
  }, 60_000);
});
