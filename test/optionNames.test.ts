/**
 * A misspelt option name is refused, before any Redis call, with an
 * `InvalidArgumentError` that names the option meant. TypeScript catches an
 * unknown name in an object literal, but not in an object built apart (read
 * from a config) and plain JavaScript not at all: `{ dedupID }` made an add
 * without its dedup ID (a retry then stored a duplicate), `{ header }` an add
 * without its headers, `{ ackGracePeriod }` a sink at the default grace
 * period, in silence. A name far from every option is still accepted: an app
 * may pass its own settings object (`StreamOptions` may be extended), and an
 * option of another call is no typo (`jitter` is not a misspelt `filter`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  consoleLogger,
  readDeadLetters,
  replayDeadLetters,
  Stream,
  type StreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName } from './support/clients.js';
import { refusal } from './support/refusal.js';

/** Options as a plain JavaScript caller (or a config file) passes them: any names. */
const js = <T>(options: Record<string, unknown>): T => options as T;

describe.each(CLIENT_KINDS)('misspelt option names (%s)', (kind) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(kind);
  });
  afterAll(async () => {
    await client.close();
  });

  it('an add with a misspelt dedupId or headers is refused and stores nothing', async () => {
    const name = uniqueName('optnames');
    const stream = new Stream(name, client.redis);
    expect(await refusal(() => stream.add('created', 'x', js({ dedupID: 'order-1' })))).toBe(
      'add options have no "dedupID" (did you mean dedupId?): it would be ignored',
    );
    expect(await refusal(() => stream.add('created', 'x', js({ header: { tenant: 'acme' } })))).toMatch(
      /"header" \(did you mean headers\?\)/,
    );
    expect(await refusal(() => stream.add('created', 'x', js({ onlyIfStreamExist: true })))).toMatch(
      /did you mean onlyIfStreamExists\?/,
    );
    expect(await client.cmd('EXISTS', `pulse:stream:${name}`)).toBe(0);
    // add takes its own names only (any other would be ignored: test/addOptionNamesStrict), and an
    // event's fields (an event forwarded as its copy's options: test/optionNamesValidCode).
    await stream.add('created', 'x', js({ topic: 't', dedupId: 'r-1', headers: undefined }));
    expect(await client.cmd('XLEN', `pulse:stream:${name}`)).toBe(1);
  });

  it('a sink or a reader with a misspelt option is refused before its group or cursor exists', async () => {
    const name = uniqueName('optnames');
    const stream = new Stream(name, client.redis);
    await stream.add('created', 'x');
    expect(await refusal(() => stream.newSink('billing', js({ ackGracePeriod: 60_000 })))).toMatch(
      /newSink options have no "ackGracePeriod" \(did you mean ackGracePeriodMs\?\)/,
    );
    expect(await refusal(() => stream.newSink('billing', js({ maxDelivery: 3 })))).toMatch(/did you mean maxDeliveries\?/);
    expect(await refusal(() => stream.newSink('billing', js({ deadLetterstream: 'x' })))).toMatch(
      /did you mean deadLetterStream\?/,
    );
    expect(await client.cmd('XINFO', 'GROUPS', `pulse:stream:${name}`)).toEqual([]);
    expect(await refusal(() => stream.newReader(js({ blockMS: 100 })))).toMatch(
      /newReader options have no "blockMS" \(did you mean blockMs\?\)/,
    );
    expect(await refusal(() => stream.newReader(js({ topics: 'eu' })))).toMatch(/did you mean topic\?/);
  });

  it('process, processBatch, retry, nack, subscribe and addStream refuse misspelt options', async () => {
    const name = uniqueName('optnames');
    const stream = new Stream(name, client.redis);
    const sink = await stream.newSink('billing', { startAt: 'oldest' });
    const reader = await stream.newReader();
    try {
      expect(await refusal(() => sink.process(async () => {}, js({ concurency: 2 })))).toMatch(
        /process options have no "concurency" \(did you mean concurrency\?\)/,
      );
      expect(await refusal(() => sink.processBatch(async () => {}, js({ maxWait: 50 })))).toMatch(
        /processBatch options have no "maxWait" \(did you mean maxWaitMs\?\)/,
      );
      expect(await refusal(() => sink.process(async () => {}, js({ retry: { delay: 100 } })))).toMatch(
        /retry options have no "delay" \(did you mean delayMs\?\)/,
      );
      expect(await refusal(() => sink.processBatch(async () => {}, js({ retry: { maxDelay: 100 } })))).toMatch(
        /did you mean maxDelayMs\?/,
      );
      expect(await refusal(() => sink.addStream(stream, js({ startat: 'oldest' })))).toMatch(/did you mean startAt\?/);
      expect(await refusal(() => reader.subscribe(js({ signals: AbortSignal.timeout(1000) })))).toMatch(/did you mean signal\?/);
      // nack: on an event the sink delivered.
      await stream.add('created', 'x');
      const [ev] = await take(sink.subscribe(), 1);
      if (ev === undefined) throw new Error('no event');
      expect(await refusal(() => ev.nack(js({ delay: 5_000 })))).toMatch(
        /nack options have no "delay" \(did you mean delayMs\?\)/,
      );
      await ev.ack();
    } finally {
      await reader.close();
      await sink.close();
    }
  });
});

describe('misspelt option names of the constructor and the helpers', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect('ioredis');
  });
  afterAll(async () => {
    await client.close();
  });

  it('new Stream refuses a misspelt option and takes an app settings object that extends StreamOptions', async () => {
    const name = uniqueName('optnames');
    expect(await refusal(() => new Stream(name, client.redis, js<StreamOptions>({ maxlen: 10 })))).toBe(
      'Stream options have no "maxlen" (did you mean maxLen?): it would be ignored',
    );
    expect(await refusal(() => new Stream(name, client.redis, js<StreamOptions>({ ttl: 60_000 })))).toMatch(
      /did you mean ttlMs\?/,
    );
    expect(await refusal(() => new Stream(name, client.redis, js<StreamOptions>({ dedupWindow: 60_000 })))).toMatch(
      /did you mean dedupWindowMs\?/,
    );
    expect(await refusal(() => new Stream(name, client.redis, js<StreamOptions>({ schema: {} })))).toMatch(
      /did you mean schemas\?/,
    );
    // README: `interface OrderStreamOptions extends StreamOptions<OrderEvents> { redisUrl: string }`, passed whole.
    const settings = { redisUrl: 'redis://localhost', tenant: 'acme', maxLen: 5 };
    const stream = new Stream(name, client.redis, settings);
    expect(stream.maxLen).toBe(5);
  });

  it('dead-letter helpers, consoleLogger and registerOpenTelemetry refuse misspelt options', async () => {
    const stream = new Stream(uniqueName('optnames'), client.redis);
    expect(await refusal(() => readDeadLetters(stream, js({ id: ['1-0'] })))).toMatch(
      /readDeadLetters options have no "id" \(did you mean ids\?\)/,
    );
    expect(await refusal(() => replayDeadLetters(stream, js({ sinks: 'billing' })))).toMatch(/did you mean sink\?/);
    expect(await refusal(() => consoleLogger(js({ levels: 'debug' })))).toMatch(/did you mean level\?/);
    expect(await refusal(() => registerOpenTelemetry(js({ meterprovider: undefined })))).toMatch(/did you mean meterProvider\?/);
  });
});
