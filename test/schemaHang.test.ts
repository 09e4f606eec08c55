/**
 * An asynchronous schema that never answers (outside review U, finding 6):
 * on add it holds its own add for `schemaLimits.answerMs` (10 s; lowered
 * here), then rejects it with InvalidArgumentError, nothing added, and the
 * adds issued after it, which wait behind it to keep their order, go on; in
 * process() the decode that never ends is said like a handler that never
 * returns, instead of stalling the sink silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type StandardSchemaV1, Stream } from '../packages/pulse-streaming/src/index.js';
import { schemaLimits } from '../packages/pulse-streaming/src/internal/eventCodec.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { forThisFile } from './support/forThisFile.js';

const schema = (validate: (v: unknown) => unknown): StandardSchemaV1 =>
  ({ '~standard': { version: 1, vendor: 'test', validate } }) as unknown as StandardSchemaV1;

// For this file only: 10 s would make the file slow.
forThisFile(schemaLimits, 'answerMs', 300);

describe.concurrent.each(CLIENT_KINDS)('an asynchronous schema that never answers (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('add: rejects with InvalidArgumentError, nothing added; the adds behind it are stored, in order', async ({
    onTestFinished,
  }) => {
    const s = new Stream<Record<string, unknown>>(uniqueName('hangadd'), c.redis, {
      schemas: { slow: schema(() => new Promise(() => {})) },
    });
    onTestFinished(() => s.destroy());
    const hung = s.add('slow', { a: 1 });
    // Another event name, without a schema: it has nothing to wait for but the hung one.
    const others = [s.add('other', { b: 1 }), s.add('other', { b: 2 })];
    await expect(hung).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(hung).rejects.toThrow(/did not answer within 300 ms/);
    const ids = await Promise.all(others);
    const entries = (await c.cmd('XRANGE', `pulse:stream:${s.name}`, '-', '+')) as Array<[unknown, unknown[]]>;
    expect(entries.map(([id]) => String(id))).toEqual(ids);
    expect(entries.map(([, f]) => String(f[f.map(String).indexOf('p') + 1]))).toEqual(['{"b":1}', '{"b":2}']);
  });

  it.for(['process', 'processBatch'] as const)(
    '%s(): a decode that never ends is said in a warn line, as a handler that never returns',
    async (mode, { onTestFinished }) => {
      const name = uniqueName('hangdecode');
      const { logger, lines } = recordingLogger();
      let first = true;
      const s = new Stream(name, c.redis, {
        logger,
        schemas: {
          e: schema((v) => {
            if (!first) return Promise.resolve({ value: v });
            first = false;
            return new Promise(() => {});
          }),
        },
      });
      const grace = 100;
      const sink = await s.newSink('g', { ackGracePeriodMs: grace, blockMs: 50 });
      onTestFinished(async () => {
        await sink.close();
        await s.destroy();
      });
      // Added by a producer without the schema: only the consumer's decoding meets it.
      const producer = new Stream<{ e: { n: number } }>(name, c.redis, { codec: 'json' });
      const id = await producer.add('e', { n: 1 });
      void (mode === 'process' ? sink.process(() => {}) : sink.processBatch(() => {}));
      await waitFor(() => lines.some((l) => l.level === 'warn' && JSON.stringify(l.obj).includes(id)), {
        timeout: 40 * grace,
        what: 'a warning about the decode that never ends',
      });
    },
  );
});
