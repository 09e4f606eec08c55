/**
 * A reader or sink started at a position behind entries trimmed or deleted
 * since (a reader resumed from a saved cursor after `maxLen` moved past it,
 * a sink created at a Date) cannot deliver or count those entries: it said
 * nothing and went on from the oldest entry left (outside review A, rolling
 * deploys). Now a warning says so (`PULSE_EVENTS_MAYBE_LOST` without a
 * logger); 'oldest', and starts with nothing removed after them, say nothing.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type StartAt, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, pulseWarnings, recordingLogger, type TestClient, take, uniqueName } from './support/clients.js';

const GAP = /may have been trimmed or deleted before it started/;

describe.concurrent.each(CLIENT_KINDS)('a start behind removed entries is said (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** Ten entries, the first three read: `saved` is the third's ID; then `trim` keeps the last four. */
  async function setup(ctx: TestContext, options: { logger?: boolean; trim?: boolean } = {}) {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('startgap'), c.redis, { maxLen: 0, ...(options.logger === false ? {} : { logger }) });
    ctx.onTestFinished(() => s.destroy());
    const before = new Date(Date.now() - 60_000);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await s.add('e', String(i)));
    if (options.trim !== false) await c.cmd('XTRIM', s.key, 'MAXLEN', '4');
    const gapLines = () => lines.filter((l) => l.level === 'warn' && GAP.test(l.msg ?? ''));
    return { s, ids, saved: ids[2] as string, before, gapLines };
  }

  it('a reader resumed from a saved cursor after entries past it were trimmed says so, and reads on', async (ctx) => {
    const { s, ids, saved, gapLines } = await setup(ctx);
    const reader = await s.newReader({ startAt: { after: saved }, blockMs: 50 });
    ctx.onTestFinished(() => reader.close());
    expect(gapLines()).toHaveLength(1);
    expect(gapLines()[0]?.obj).toMatchObject({ start: saved });
    const got = await take(reader.subscribe()[Symbol.asyncIterator](), 4);
    expect(got.map((e) => e.id)).toEqual(ids.slice(6));
  });

  it('without a logger it is a PulseWarning PULSE_EVENTS_MAYBE_LOST', async (ctx) => {
    const { s, saved } = await setup(ctx, { logger: false });
    const warnings = pulseWarnings(s.name, ctx);
    const reader = await s.newReader({ startAt: { after: saved }, blockMs: 50 });
    ctx.onTestFinished(() => reader.close());
    await new Promise((r) => setImmediate(r));
    expect(warnings.filter((w) => GAP.test(w.message)).map((w) => w.code)).toEqual(['PULSE_EVENTS_MAYBE_LOST']);
  });

  it('a sink created at a Date before entries trimmed since says so', async (ctx) => {
    const { s, before, gapLines } = await setup(ctx);
    const sink = await s.newSink('g', { startAt: before, blockMs: 50 });
    ctx.onTestFinished(() => sink.close());
    expect(gapLines()).toHaveLength(1);
    // An instance joining the existing group starts nothing: said once, by the one that created it.
    const again = await s.newSink('g', { startAt: before, blockMs: 50 });
    ctx.onTestFinished(() => again.close());
    expect(gapLines()).toHaveLength(1);
  });

  it.for<[string, (x: { saved: string; before: Date }) => StartAt, boolean]>([
    ["'oldest' over a trimmed stream", () => 'oldest', true],
    ["'newest'", () => 'newest', true],
    ['a saved cursor with nothing removed after it', ({ saved }) => ({ after: saved }), false],
    ['a Date with nothing removed after it', ({ before }) => before, false],
  ])('%s: nothing said, reader and sink', async ([, startAt, trim], ctx) => {
    const { s, saved, before, gapLines } = await setup(ctx, { trim });
    const reader = await s.newReader({ startAt: startAt({ saved, before }), blockMs: 50 });
    ctx.onTestFinished(() => reader.close());
    const sink = await s.newSink('g', { startAt: startAt({ saved, before }), blockMs: 50 });
    ctx.onTestFinished(() => sink.close());
    expect(gapLines()).toEqual([]);
  });
});
