/**
 * README "A sink created with noAck: true ...": "Events that do not decode are
 * still copied to the dead-letter stream, and events trimmed before the sink
 * read them are still reported lost." Neither had a test with a noAck sink.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { readDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';

const schema = {
  '~standard': {
    version: 1 as const,
    vendor: 'test',
    validate: (v: unknown) =>
      typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'number'
        ? { value: v as { id: number } }
        : { issues: [{ message: 'id must be a number' }] },
  },
};

describe.concurrent.each(CLIENT_KINDS)('noAck sink (%s)', (kind) => {
  async function setup(ctx: TestContext, maxLen: number) {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('noack'), c.redis, { maxLen, logger, schemas: { 'order.created': schema } });
    ctx.onTestFinished(async () => {
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    });
    return { c, s, lines };
  }

  for (const mode of ['process', 'processBatch'] as const) {
    it(`${mode}(): an event that does not decode is still copied to the dead-letter stream (decode:), never handed over`, async (ctx) => {
      const { c, s } = await setup(ctx, 0);
      const sink = await s.newSink('g', { noAck: true, blockMs: 100, ackGracePeriodMs: 1000 });
      ctx.onTestFinished(() => sink.close());
      const seen: string[] = [];
      const ac = new AbortController();
      const run =
        mode === 'process'
          ? sink.process(async (ev) => void seen.push(ev.id), { signal: ac.signal })
          : sink.processBatch(async (evs) => void seen.push(...evs.map((e) => e.id)), { signal: ac.signal });
      const bad = String(await c.cmd('XADD', s.key, '*', 'n', 'order.created', 'p', 'not json'));
      const badSchema = String(await c.cmd('XADD', s.key, '*', 'n', 'order.created', 'p', '{"id":"x"}'));
      const good = await s.add('order.created', { id: 1 });
      await waitFor(() => seen.includes(good), { what: 'the good event handled' });
      await waitFor(async () => (await readDeadLetters(s)).length === 2, { what: 'two dead letters' });
      const dead = await readDeadLetters(s);
      expect(dead.map((d) => d.sourceId).sort()).toEqual([bad, badSchema].sort());
      expect(dead.every((d) => d.reason.startsWith('decode:'))).toBe(true);
      expect(seen).toEqual([good]);
      expect(sink.counters.deadLettered).toBe(2);
      const pending = (await c.cmd('XPENDING', s.key, 'g')) as unknown[];
      expect(Number(pending[0])).toBe(0);
      ac.abort();
      await run;
    });
  }

  it('events trimmed while no subscription read are reported lost once it reads again', async (ctx) => {
    const { s, lines } = await setup(ctx, 10);
    const sink = await s.newSink('g', { noAck: true, blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => sink.close());
    const sub = sink.subscribe();
    await s.add('order.created', { id: 0 });
    await take(sub, 1);
    sink.unsubscribe(sub); // no subscriber: the sink stops reading
    for (let i = 1; i <= 300; i++) await s.add('order.created', { id: i });
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, false);
    await waitFor(() => got.length > 0 && (got.at(-1) as SinkEvent).json<{ id: number }>().id === 300, {
      what: 'the last event',
    });
    const delivered = got.length;
    await waitFor(() => sink.counters.lost + delivered === 300, { what: `${300 - delivered} lost` });
    expect(lines.some((l) => l.level === 'warn' && /trimmed|lost/.test(String(l.msg)))).toBe(true);
    await sink.close();
    await run;
    expect(sink.counters.lost + got.length).toBe(300);
  });
});
