/**
 * A noAck sink acks each event as it reads it (XREADGROUP NOACK): nothing is pending, so nothing
 * is redelivered. A handler of process() that threw used to be logged "handler failed: event
 * nacked" (saying it would come back: it never did, nor was it dead-lettered or counted), and
 * newSink accepted `maxDeliveries` with it, which could never apply (an outside review). Now what
 * cannot apply is refused, and a failure is said as it is.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { InvalidArgumentError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('noAck sink: what cannot be redelivered is said (%s)', (kind) => {
  async function setup(ctx: TestContext) {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('noack-fail'), c.redis, { maxLen: 0, logger });
    ctx.onTestFinished(async () => {
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    });
    const warns = () => lines.filter((l) => l.level === 'warn').map((l) => String(l.msg));
    return { c, s, warns };
  }

  it('newSink refuses maxDeliveries with noAck, before any Redis call', async (ctx) => {
    const { c, s } = await setup(ctx);
    await expect(s.newSink('g', { noAck: true, maxDeliveries: 2 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await c.cmd('EXISTS', s.key)).toBe(0);
  });

  it('process() and processBatch() refuse retry on a noAck sink', async (ctx) => {
    const { s } = await setup(ctx);
    const sink = await s.newSink('g', { noAck: true, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    await expect(sink.process(() => {}, { retry: { delayMs: 50 } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sink.processBatch(() => {}, { retry: false })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a handler that throws: said not redelivered (not "nacked"), nothing pending; nack() rejects', async (ctx) => {
    const { c, s, warns } = await setup(ctx);
    const sink = await s.newSink('g', { noAck: true, ackGracePeriodMs: 1000, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    const ac = new AbortController();
    const nacks: unknown[] = [];
    const run = sink.process(
      async (ev) => {
        if (ev.text() === 'nack') {
          nacks.push(await ev.nack().catch((err: unknown) => err));
          return;
        }
        throw new Error('boom');
      },
      { signal: ac.signal },
    );
    await s.add('e', 'poison');
    await s.add('e', 'nack');
    await waitFor(() => warns().includes('handler failed on a noAck sink: the event is not redelivered'), {
      what: 'the failure said',
    });
    await waitFor(() => nacks.length === 1, { what: 'the nack' });
    expect(nacks[0]).toBeInstanceOf(InvalidArgumentError);
    expect(warns().filter((m) => /nacked/.test(m))).toEqual([]);
    expect(Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0])).toBe(0);
    ac.abort();
    await run;
  });

  it('a batch handler that throws: said not redelivered (not "nacked")', async (ctx) => {
    const { s, warns } = await setup(ctx);
    const sink = await s.newSink('g', { noAck: true, ackGracePeriodMs: 1000, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    const ac = new AbortController();
    const run = sink.processBatch(
      () => {
        throw new Error('boom');
      },
      { signal: ac.signal, maxWaitMs: 0 },
    );
    await s.add('e', 'poison');
    await waitFor(() => warns().includes('batch handler failed on a noAck sink: its events are not redelivered'), {
      what: 'the failure said',
    });
    expect(warns().filter((m) => /nacked/.test(m))).toEqual([]);
    ac.abort();
    await run;
  });

  it('a for-await loop nacking a noAck event is told it cannot come back', async (ctx) => {
    const { s } = await setup(ctx);
    const sink = await s.newSink('g', { noAck: true, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    const sub = sink.subscribe();
    await s.add('e', 'x');
    const [ev] = (await take(sub, 1)) as [SinkEvent];
    await expect(ev.nack({ delayMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
