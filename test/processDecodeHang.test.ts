/**
 * README "Typed events": "In process() a decode that never ends holds its slot
 * like a handler that never returns, and the same warn line says so." No test
 * had a decode that never ends under process().
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, stays, uniqueName, waitFor } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('process() with a decode that never ends (%s)', (kind) => {
  it('holds its slot (the next event waits, nothing redelivered) and is said with the long-handler warn line', async (ctx) => {
    // Not shorter: the stuck event is kept in progress every fraction of a grace period, and with
    // 100 ms a loaded machine (a full run, once) let a keep-alive come late enough for a claim.
    const grace = 400;
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const never = new Promise<never>(() => {});
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (v: unknown) => ((v as { id: number }).id === 0 ? never : { value: v }),
      },
    };
    const s = new Stream(uniqueName('hang'), c.redis, { logger, maxLen: 0, schemas: { e: schema } });
    ctx.onTestFinished(() => s.destroy());
    // Added raw: the add itself would wait for the schema.
    const stuck = String(await c.cmd('XADD', s.key, '*', 'n', 'e', 'p', '{"id":0}'));
    const next = await s.add('e', { id: 1 });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: grace });
    ctx.onTestFinished(() => sink.close());
    const seen: string[] = [];
    const stop = new AbortController();
    const run = sink.process(async (ev) => void seen.push(ev.id), { signal: stop.signal });
    const said = () => lines.filter((l) => l.level === 'warn' && /a handler is still running/.test(String(l.msg)));
    await waitFor(() => said().length > 0, { timeout: 30 * grace, what: 'the stuck decode said' });
    expect(said()[0]?.obj).toMatchObject({ ids: [stuck], count: 1, stream: s.name });
    // Its slot is held (concurrency 1): the next event is not handled; neither is redelivered.
    await stays(() => seen.length === 0 && sink.counters.redelivered === 0, 5 * grace, 'slot held, nothing redelivered').catch(
      (e: unknown) => {
        throw new Error(`${e}: handled ${JSON.stringify(seen)}, counters ${JSON.stringify(sink.counters)}`);
      },
    );
    expect(next).toBeTypeOf('string');
    stop.abort();
    await sink.close();
    void run;
  });
});
