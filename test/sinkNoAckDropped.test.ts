/**
 * A noAck sink acks events as it reads them: those it read but never handed
 * out (buffered when it closes, or when its last subscription leaves) can
 * never come back. They are lost, and said as every loss is: counted in
 * `counters.lost` and a `warn` line, or a PulseWarning without a logger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../packages/pulse-streaming/src/index.js';
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

describe.concurrent.each(CLIENT_KINDS)('noAck sink: events read but never handed out (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('are reported lost when it closes', async (ctx) => {
    const cl = c;
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('noackdrop'), cl.redis, { maxLen: 0, logger: logger as Logger });
    ctx.onTestFinished(() => s.destroy());
    for (let i = 0; i < 20; i++) await s.add('e', `p${i}`);
    const sink = await s.newSink('sink', { noAck: true, startAt: 'oldest', blockMs: 100 });
    const sub = sink.subscribe();
    const got = await take(sub, 1);
    // The other 19 arrive in the buffer with the same read.
    await waitFor(() => sub.size === 19, { what: 'the rest buffered' });
    await sink.close();
    expect(got.length).toBe(1);
    expect(sink.counters.lost).toBe(19);
    const said = lines.filter((l) => l.level === 'warn' && /noAck sink read but never handed out/.test(l.msg ?? ''));
    expect(said.map((l) => (l.obj as { count: number }).count)).toEqual([19]);
  });

  it('without a logger, are a PulseWarning', async (ctx) => {
    const cl = c;
    const s = new Stream(uniqueName('noackdropw'), cl.redis, { maxLen: 0 });
    ctx.onTestFinished(() => s.destroy());
    const warned = pulseWarnings(s.name, ctx);
    for (let i = 0; i < 5; i++) await s.add('e', `p${i}`);
    const sink = await s.newSink('sink', { noAck: true, startAt: 'oldest', blockMs: 100 });
    const sub = sink.subscribe();
    await take(sub, 1);
    await waitFor(() => sub.size === 4, { what: 'the rest buffered' });
    await sink.close();
    await waitFor(() => warned.length > 0, { what: 'the warning' });
    expect(warned[0]?.code).toBe('PULSE_EVENTS_LOST');
    expect(warned[0]?.message).toMatch(/\b4\b/);
  });
});
