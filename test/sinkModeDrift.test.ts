/**
 * A sink redeployed with `noAck: true`, or run with noAck and ack-mode
 * instances side by side (outside review A: a rolling deploy that changes
 * the option is ordinary). A noAck instance never claimed, so the events an
 * ack-mode instance left pending (closed or crashed before acking) were
 * never redelivered, dead-lettered or reported, and silently trimmed later.
 * Checks, with both clients, that a noAck instance takes them over (once,
 * acked as it claims them: at most once, as its reads are), reports those
 * trimmed meanwhile as lost, leaves a live ack-mode instance's events alone,
 * and says once that the instances differ in noAck.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, take, waitFor } from './support/clients.js';
import { sinkInstances } from './support/sinkInstances.js';

describe.concurrent.each(CLIENT_KINDS)('sink instances with and without noAck (%s)', (kind) => {
  async function setup(ctx: TestContext) {
    const { c, sinkName, instance } = await sinkInstances(ctx, kind, 'modeDrift', { ackGracePeriodMs: 300 });
    const pending = async (key: string) => Number(((await c.cmd('XPENDING', key, sinkName)) as unknown[])[0]);
    return { c, instance, pending };
  }

  it('redeployed with noAck: the event an ack-mode instance left pending is delivered once, nothing left pending', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({});
    const subA = a.sink.subscribe();
    const id = await a.s.add('e', 'left-pending');
    await take(subA, 1);
    // Never acked: the instance stops with it pending.
    await a.sink.close();
    const b = await t.instance({ noAck: true });
    const got: SinkEvent[] = [];
    void collect(b.sink.subscribe(), got, true);
    await b.s.add('e', 'new');
    await waitFor(() => got.length === 2, { timeout: 5000, what: 'both events' });
    expect(got.map((e) => [e.text(), e.id === id ? e.deliveryCount : 1]).sort()).toEqual([
      ['left-pending', 2],
      ['new', 1],
    ]);
    await waitFor(async () => (await t.pending(a.s.key)) === 0, { what: 'nothing pending' });
    expect(b.rec.lines.filter((l) => l.level === 'warn' && l.msg?.includes('with and without noAck'))).toHaveLength(1);
  });

  it('redeployed with noAck, the pending event deleted meanwhile: reported lost, never silent', async (ctx) => {
    const t = await setup(ctx);
    const a = await t.instance({});
    const subA = a.sink.subscribe();
    const id = (await a.s.add('e', 'left-pending')) as string;
    await take(subA, 1);
    await a.sink.close();
    // As maxLen trimming would (the path is the same): gone from the stream, still pending.
    await t.c.cmd('XDEL', a.s.key, id);
    const b = await t.instance({ noAck: true });
    const got: SinkEvent[] = [];
    void collect(b.sink.subscribe(), got, true);
    await waitFor(() => b.sink.counters.lost === 1, { timeout: 5000, what: 'the loss counted' });
    const lost = b.rec.lines.filter((l) => l.level === 'warn' && l.msg?.includes('trimmed or deleted before they were acked'));
    expect(lost.map((l) => (l.obj as { ids?: string[] }).ids)).toEqual([[id]]);
    await waitFor(async () => (await t.pending(a.s.key)) === 0, { what: 'nothing pending' });
  });

  it("side by side: the noAck instance leaves a live ack-mode instance's events alone, takes them once it stops", async (ctx) => {
    const t = await setup(ctx);
    // A grace period long enough that A does not take back its own unacked events during the test.
    const a = await t.instance({ ackGracePeriodMs: 1000 });
    const b = await t.instance({ noAck: true });
    const subA = a.sink.subscribe();
    for (let i = 0; i < 5; i++) await a.s.add('e', String(i));
    // A holds the five, unacked, while it lives (its holds keep them from claims).
    const held = await take(subA, 5, 5000);
    const gotB: SinkEvent[] = [];
    void collect(b.sink.subscribe(), gotB, true);
    // Nacked by a live ack-mode instance: redelivered to it (at least once), never to the noAck one.
    await held[0]?.nack({ delayMs: 0 });
    const [again] = await take(subA, 1, 5000);
    expect(again?.id).toBe(held[0]?.id);
    expect(gotB).toHaveLength(0);
    await a.sink.close();
    await waitFor(() => gotB.length === 5, { timeout: 5000, what: 'the five at the noAck instance' });
    expect(gotB.map((e) => e.id).sort()).toEqual(held.map((e) => e.id).sort());
    await waitFor(async () => (await t.pending(a.s.key)) === 0, { what: 'nothing pending' });
  });
});
