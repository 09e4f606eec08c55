/**
 * Outside review AK (defect 5; line numbers as of commit 41e36ff):
 * `stream.destroy()` while a sink had no instance running (a deploy
 * restarting it) left the sink an obituary with what it took (stream.ts
 * destroy() TSDoc: "the count waits for one [live instance] in a key of its
 * own for 10 minutes"), but only an instance that watched the key go took it
 * (`takeObituary`, streamGone.ts:72): an instance started after the destroy
 * created the group anew (MKSTREAM) and never looked at it, so the events
 * were lost without a count or a line.
 * Failed before the fix: the new instance (newSink, or addStream of the
 * destroyed stream) stayed at lost 0 and said nothing, with both clients.
 * Fixed: an instance that creates or joins the group takes the obituary once
 * the join stands and counts it (ownership.ts `countObituaryAtJoin`); taking
 * marks it taken, so one instance counts it, however many start.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type Sink, Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, take, uniqueName, within } from './support/clients.js';

const OPTS = { blockMs: 100, ackGracePeriodMs: 1000 };

/** Sink `g` of a new stream: one event handled, 5 left unread, its only instance closed, then destroy(). */
async function destroyedWhileDown(ctx: TestContext, c: TestClient, prefix: string) {
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName(prefix), c.redis, { logger: logger as Logger, maxLen: 0 });
  ctx.onTestFinished(() => s.destroy());
  const first = await s.newSink('g', OPTS);
  const sub = first.subscribe();
  await s.add('e', 'a0');
  await (await take(sub, 1))[0]?.ack();
  first.unsubscribe(sub);
  for (let i = 0; i < 5; i++) await s.add('e', `b${i}`);
  await within(first.close(), 10_000, 'close');
  await s.destroy();
  expect(String(await c.cmd('GET', sinkKeys(s.name, 'g').obituary))).toBe('5');
  /** The warn lines that counted events of the destroy. */
  const said = () =>
    lines
      .filter((l) => l.level === 'warn' && /deleted with their stream \(destroy\)/.test(String(l.msg)))
      .map((l) => (l.obj as { count?: number }).count);
  return { s, said, logger };
}

describe.concurrent.each(CLIENT_KINDS)('destroy() while the sink has no instance (%s)', (kind) => {
  it('an instance started after it counts and says what destroy() took, once', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { s, said } = await destroyedWhileDown(ctx, c, 'obNew');
    const second = await s.newSink('g', OPTS);
    ctx.onTestFinished(() => within(second.close(), 10_000, 'close'));
    // Counted by the time newSink resolves.
    expect(second.counters.lost).toBe(5);
    expect(said()).toEqual([5]);
    // Taken: the next instance does not count it again.
    const third = await s.newSink('g', OPTS);
    ctx.onTestFinished(() => within(third.close(), 10_000, 'close'));
    expect(third.counters.lost).toBe(0);
    expect(said()).toEqual([5]);
    expect(String(await c.cmd('GET', sinkKeys(s.name, 'g').obituary))).toBe('taken');
  }, 30_000);

  it('instances started at once after it: one of them counts it', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { s, said } = await destroyedWhileDown(ctx, c, 'obMany');
    const sinks: Sink[] = await Promise.all(Array.from({ length: 3 }, () => s.newSink('g', OPTS)));
    for (const k of sinks) ctx.onTestFinished(() => within(k.close(), 10_000, 'close'));
    expect(sinks.map((k) => k.counters.lost).sort()).toEqual([0, 0, 5]);
    expect(said()).toEqual([5]);
  }, 30_000);

  it('an instance of the sink that adds the destroyed stream (addStream) counts it', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const { s, said, logger } = await destroyedWhileDown(ctx, c, 'obAdd');
    // The sink's lines go to its first stream's logger.
    const other = new Stream(uniqueName('obOther'), c.redis, { logger: logger as Logger, maxLen: 0 });
    ctx.onTestFinished(() => other.destroy());
    const sink = await other.newSink('g', OPTS);
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    expect(sink.counters.lost).toBe(0);
    await sink.addStream(s);
    expect(sink.counters.lost).toBe(5);
    expect(said()).toEqual([5]);
  }, 30_000);
});
