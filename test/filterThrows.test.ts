/**
 * A `filter` that throws rejects the event (a sink acks it): never silent,
 * also without a logger. Before, with no logger, such events went unseen and
 * unsaid: the error line went to the library's silent default logger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  connect,
  pulseWarnings,
  recordingLogger,
  type TestClient,
  take,
  uniqueName,
  waitFor,
} from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('a filter that throws (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const throwing = (ev: { text(): string }) => {
    if (ev.text() === 'bad') throw new Error('filter bug');
    return true;
  };

  it('without a logger: the first is a PulseWarning PULSE_FILTER_THREW, once per sink and reader', async (ctx) => {
    const s = new Stream(uniqueName('filterthrow'), c.redis, { maxLen: 0 });
    const warnings = pulseWarnings(s.name, ctx);
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest', filter: throwing });
    const reader = await s.newReader({ blockMs: 100, startAt: 'oldest', filter: throwing });
    try {
      for (const p of ['bad', 'bad', 'good']) await s.add('e', p);
      const [fromSink] = await take(sink.subscribe(), 1);
      const [fromReader] = await take(reader.subscribe(), 1);
      expect([fromSink?.text(), fromReader?.text()]).toEqual(['good', 'good']);
      await fromSink?.ack();
      const threw = () => warnings.filter((w) => w.code === 'PULSE_FILTER_THREW');
      await waitFor(() => threw().length >= 2, {
        what: `one warning from each (so far: ${JSON.stringify(warnings.map((w) => [w.code, w.message]))})`,
      });
      expect(
        threw()
          .map((w) => w.message.replace(/ on event .*/, ''))
          .sort(),
      ).toEqual([`sink g on stream ${s.name}: its filter threw`, `reader of stream ${s.name}: its filter threw`].sort());
      expect(threw().every((w) => w.message.includes('filter bug'))).toBe(true);
      // Rejected: a sink acks it, so nothing waits to be redelivered.
      expect(sink.counters.filtered).toBe(2);
    } finally {
      await sink.close();
      await reader.close();
      await s.destroy();
    }
  });

  it('with a logger: each is an error line, and no process warning', async (ctx) => {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('filterthrow'), c.redis, { maxLen: 0, logger });
    const warnings = pulseWarnings(s.name, ctx);
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest', filter: throwing });
    try {
      for (const p of ['bad', 'bad', 'good']) await s.add('e', p);
      const [ev] = await take(sink.subscribe(), 1);
      expect(ev?.text()).toBe('good');
      await ev?.ack();
      expect(lines.filter((l) => l.level === 'error' && /filter threw/.test(String(l.msg)))).toHaveLength(2);
      expect(warnings).toHaveLength(0);
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  // On a typed stream whose schema validates asynchronously, the filter's own throw (not one of
  // reading `data`) let the event through, unsaid: what reading `data` throws was told from the
  // filter's own by decodeFailure(), a promise for such an event, never undefined (a review of the
  // consuming side). A schema that answers at once is the control.
  for (const what of ['reader', 'sink'] as const)
    for (const async of [false, true])
      it(`${what}, a schema that answers ${async ? 'with a promise' : 'at once'}: the event it throws on is rejected and said`, async ({
        onTestFinished,
      }) => {
        const { logger, lines } = recordingLogger();
        const schema = {
          '~standard': {
            version: 1 as const,
            vendor: 'test',
            validate: (value: unknown) => (async ? Promise.resolve({ value }) : { value }),
          },
        };
        const s = new Stream<{ e: { n: number } }>(uniqueName('filterthrow-typed'), c.redis, {
          maxLen: 0,
          logger,
          schemas: { e: schema } as never,
        });
        onTestFinished(() => s.destroy());
        // Its own bug: it never reads `data`.
        const filter = (ev: { payload: Buffer }) => {
          if (ev.payload.toString() === '{"n":1}') throw new Error('filter bug');
          return true;
        };
        const src =
          what === 'reader'
            ? await s.newReader({ startAt: 'oldest', blockMs: 100, filter })
            : await s.newSink('g', { startAt: 'oldest', blockMs: 100, filter });
        onTestFinished(() => src.close());
        await s.add('e', { n: 1 });
        const second = await s.add('e', { n: 2 });
        const [first] = await take(src.subscribe(), 1);
        expect(first?.id).toBe(second);
        await waitFor(() => lines.some((l) => l.level === 'error' && /filter threw/.test(String(l.msg))), {
          what: 'the filter threw line',
        });
      });
});
