/**
 * A user logger that throws (or is async and rejects) never breaks delivery:
 * no event skipped or left pending, no loop killed, no uncaughtException or
 * unhandledRejection, no rejected `close()`/`ack()`/`newSink()`. The library
 * wraps the user's logger once where `Stream` takes it (internal/safeLogger.ts)
 * and says the first failure as a `PulseWarning` `PULSE_LOGGER_FAILED`.
 *
 * What escapes is seen in this process: each test's logger throws errors with
 * a tag of its own, and `escapes()` records uncaughtExceptions and
 * unhandledRejections carrying that tag (vitest's own handlers keep the worker alive).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, pulseWarnings, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

type Ctx = { onTestFinished(fn: () => void): void };
type Level = 'debug' | 'info' | 'warn' | 'error';

/** How its `child()` fails: always, only below the stream's own child (a sink's, a reader's), or returning no logger. */
type ChildFailure = 'throws' | 'throws below the stream' | 'not a logger';

/** A logger whose `levels` throw an error tagged `tag` (or, `async`, return a promise rejected with it). */
function failingLogger(tag: string, levels: Level[], opts: { async?: boolean; child?: ChildFailure } = {}) {
  const calls: Array<{ level: Level; obj: object; msg: string | undefined }> = [];
  const make = (depth: number, bindings: object): Logger => {
    const l = {} as Record<string, unknown>;
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      l[level] = (obj: object, msg?: string) => {
        calls.push({ level, obj: { ...bindings, ...obj }, msg });
        if (!levels.includes(level)) return;
        const err = new Error(`logger boom ${tag}`);
        if (opts.async) return Promise.reject(err);
        throw err;
      };
    }
    l.child = (more: object) => {
      if (opts.child === 'throws' || (opts.child === 'throws below the stream' && depth > 0))
        throw new Error(`child boom ${tag}`);
      if (opts.child === 'not a logger') return undefined;
      return make(depth + 1, { ...bindings, ...more });
    };
    return l as unknown as Logger;
  };
  return { logger: make(0, {}), calls };
}

/** uncaughtExceptions and unhandledRejections mentioning `tag`, to the end of the test. */
function escapes(tag: string, ctx: Ctx): string[] {
  const seen: string[] = [];
  const listener = (err: unknown): void => {
    if (String(err).includes(tag)) seen.push(String(err));
  };
  process.on('uncaughtException', listener);
  process.on('unhandledRejection', listener);
  ctx.onTestFinished(() => {
    process.off('uncaughtException', listener);
    process.off('unhandledRejection', listener);
  });
  return seen;
}

/** A few turns of the event loop, for a late timer or rejection to show (not an assertion on time). */
const settleTurns = () => new Promise((r) => setTimeout(r, 50));

const refuses3 = (ev: { text(): string }) => {
  if (ev.text() === '3') throw new Error('filter refuses 3');
  return true;
};
const TEN = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const NOT3 = TEN.filter((t) => t !== '3');

describe.concurrent.each(CLIENT_KINDS)('a user logger that throws (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** A stream whose logger fails at `levels`, and what escaped the library. */
  function setup(ctx: Ctx, levels: Level[], opts?: Parameters<typeof failingLogger>[2]) {
    const tag = uniqueName('tag');
    const { logger, calls } = failingLogger(tag, levels, opts);
    const s = new Stream(uniqueName('logthrows'), c.redis, { logger });
    ctx.onTestFinished(() => s.destroy());
    return { s, calls, escaped: escapes(tag, ctx), warnings: pulseWarnings(s.name, ctx) };
  }

  it('reader: a filter that throws, with error() throwing: the rest of the read is delivered', async (ctx) => {
    const { s, escaped } = setup(ctx, ['error']);
    for (const t of TEN) await s.add('e', t);
    const r = await s.newReader({ startAt: 'oldest', blockMs: 50, filter: refuses3 });
    ctx.onTestFinished(() => r.close());
    const got = await take(r.subscribe(), 9);
    expect(got.map((ev) => ev.text())).toEqual(NOT3);
    expect(escaped).toEqual([]);
  });

  it('sink: a filter that throws, with error() throwing: the rest is delivered, nothing stays pending', async (ctx) => {
    const { s, escaped } = setup(ctx, ['error']);
    for (const t of TEN) await s.add('e', t);
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 50, ackGracePeriodMs: 200, filter: refuses3 });
    ctx.onTestFinished(() => sink.close());
    const got = await take(sink.subscribe(), 9);
    for (const ev of got) await ev.ack();
    expect(got.map((ev) => ev.text()).sort()).toEqual(NOT3);
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
      what: 'nothing pending',
    });
    expect(escaped).toEqual([]);
  });

  it('process(): the long-handler warning, with warn() throwing, does not escape its timer', async (ctx) => {
    // Warned past 10 grace periods (1.5 s). 40 ms was too short for a loaded run: a stall of the
    // process past it let the hold lapse (a CI run timed out waiting for the ack).
    const grace = 150;
    const { s, calls, escaped } = setup(ctx, ['warn']);
    const sink = await s.newSink('g', { ackGracePeriodMs: grace, blockMs: 50 });
    ctx.onTestFinished(() => sink.close());
    await s.add('e', 'x');
    let handled = 0;
    const done = sink.process(async () => {
      // Runs until the library has warned that it is long (past 10 grace periods).
      await waitFor(() => calls.some((l) => l.level === 'warn'), { what: 'the long-handler warning', timeout: 10_000 });
      handled++;
    });
    await waitFor(async () => handled === 1 && Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
      what: 'handled and acked',
      timeout: 15_000,
    });
    await sink.close();
    await done;
    await settleTurns();
    expect(escaped).toEqual([]);
  });

  it('process(): a failed handler, with warn() throwing, is still nacked with its retry delay', async (ctx) => {
    const { s, escaped } = setup(ctx, ['warn']);
    // A long grace period: only the nack (delay 0) brings the event back within the test.
    const sink = await s.newSink('g', { ackGracePeriodMs: 60_000, blockMs: 50 });
    ctx.onTestFinished(() => sink.close());
    await s.add('e', 'x');
    const deliveries: number[] = [];
    const done = sink.process(
      (ev) => {
        deliveries.push(ev.deliveryCount);
        if (ev.deliveryCount === 1) throw new Error('first delivery fails');
      },
      { retry: { delayMs: 0 } },
    );
    await waitFor(() => deliveries.length >= 2, { what: 'the redelivery' });
    await sink.close();
    await done;
    expect(deliveries.slice(0, 2)).toEqual([1, 2]);
    expect(escaped).toEqual([]);
  });

  it('reader: a loss reported through warn() throwing: close() resolves, nothing escapes', async (ctx) => {
    const { s, escaped } = setup(ctx, ['warn']);
    await s.add('e', 'first');
    const r = await s.newReader({ startAt: 'oldest', blockMs: 50, bufferSize: 1, maxPolled: 1 });
    const it = r.subscribe()[Symbol.asyncIterator]();
    await take(it, 1);
    // Trimmed past the reader's position: a loss it reports.
    for (let i = 0; i < 20; i++) await s.add('e', String(i));
    await c.cmd('XTRIM', s.key, 'MAXLEN', '5');
    // What was read ahead before the trim may still come first: up to the last one.
    while ((await take(it, 1))[0]?.text() !== '19');
    await waitFor(() => r.counters.lost > 0, { what: 'the loss counted' });
    await r.close();
    await settleTurns();
    expect(escaped).toEqual([]);
  });

  it('sink: info() and warn() throwing do not stop the takeover of a gone instance, nor close()', async (ctx) => {
    const grace = 100;
    const { s, escaped } = setup(ctx, ['info', 'warn']);
    // Instance A, without the failing logger, takes the event and goes away without acking it.
    const sA = new Stream(s.name, c.redis);
    const a = await sA.newSink('g', { ackGracePeriodMs: grace, blockMs: 50 });
    await s.add('e', 'x');
    await take(a.subscribe(), 1);
    await a.close();
    const b = await s.newSink('g', { ackGracePeriodMs: grace, blockMs: 50 });
    const [ev] = await take(b.subscribe(), 1, 30 * grace);
    expect(ev?.text()).toBe('x');
    await ev?.ack();
    await b.close();
    await settleTurns();
    expect(escaped).toEqual([]);
  });

  it('sink: the stale-ack warning, with warn() throwing, does not reject an ack that succeeded', async (ctx) => {
    const { s, escaped } = setup(ctx, ['warn']);
    const sink = await s.newSink('g', { ackGracePeriodMs: 60_000, blockMs: 50 });
    ctx.onTestFinished(() => sink.close());
    await s.add('e', 'x');
    const [ev] = await take(sink.subscribe(), 1);
    if (ev === undefined) throw new Error('no event');
    // Acked behind the sink's back: its own XACK then finds it no longer pending (a stale ack).
    await c.cmd('XACK', s.key, 'g', ev.id);
    await ev.ack();
    await waitFor(() => sink.counters.staleAcks > 0, { what: 'the stale ack counted' });
    expect(escaped).toEqual([]);
  });

  it('an async logger whose calls reject: no unhandledRejection, one PULSE_LOGGER_FAILED warning', async (ctx) => {
    const { s, escaped, warnings } = setup(ctx, ['info', 'warn', 'error'], { async: true });
    for (const t of TEN) await s.add('e', t);
    const r = await s.newReader({ startAt: 'oldest', blockMs: 50, filter: refuses3 });
    ctx.onTestFinished(() => r.close());
    await take(r.subscribe(), 9);
    const failed = () => warnings.filter((w) => w.code === 'PULSE_LOGGER_FAILED');
    await waitFor(() => failed().length > 0, { what: 'the PULSE_LOGGER_FAILED warning' });
    await r.close();
    await settleTurns();
    expect(failed()).toHaveLength(1);
    expect(failed()[0]?.message).toContain('logger boom');
    expect(escaped).toEqual([]);
  });

  it.for(['throws', 'throws below the stream', 'not a logger'] as const)(
    'child() that %s: newSink and newReader work, lines keep their bindings',
    async (child, ctx) => {
      const { s, calls, escaped, warnings } = setup(ctx, [], { child });
      const sink = await s.newSink('g', { blockMs: 50, startAt: 'oldest', filter: refuses3 });
      ctx.onTestFinished(() => sink.close());
      const r = await s.newReader({ startAt: 'oldest', blockMs: 50 });
      ctx.onTestFinished(() => r.close());
      for (const t of ['2', '3', '4']) await s.add('e', t);
      const got = await take(sink.subscribe(), 2);
      for (const ev of got) await ev.ack();
      expect(got.map((ev) => ev.text())).toEqual(['2', '4']);
      expect((await take(r.subscribe(), 3)).map((ev) => ev.text())).toEqual(['2', '3', '4']);
      // The filter's error line, with the bindings the user's child() could not carry.
      await waitFor(() => calls.some((l) => l.level === 'error'), { what: 'the filter error line' });
      expect(calls.find((l) => l.level === 'error')?.obj).toMatchObject({ stream: s.name, sink: 'g' });
      expect(warnings.filter((w) => w.code === 'PULSE_LOGGER_FAILED')).toHaveLength(1);
      expect(escaped).toEqual([]);
    },
  );

  it('the wrapper never throws, merges bindings under a fallback child, and warns once per user logger', async (ctx) => {
    const tag = uniqueName('tag');
    const { logger, calls } = failingLogger(tag, ['debug', 'info', 'warn', 'error'], { child: 'throws' });
    const name = uniqueName('logthrows');
    const warnings = pulseWarnings(name, ctx);
    // Two streams sharing one logger: still one warning, naming the first.
    const s1 = new Stream(name, c.redis, { logger });
    const s2 = new Stream(`${name}-2`, c.redis, { logger });
    for (const s of [s1, s2]) {
      const child = s.logger.child({ a: 1 }).child({ b: 2 });
      for (const level of ['debug', 'info', 'warn', 'error'] as const) expect(() => child[level]({ c: 3 }, level)).not.toThrow();
    }
    expect(calls[0]).toMatchObject({ level: 'debug', obj: { stream: name, a: 1, b: 2, c: 3 }, msg: 'debug' });
    await waitFor(() => warnings.length > 0, { what: 'the warning' });
    await settleTurns();
    expect(warnings.map((w) => w.code)).toEqual(['PULSE_LOGGER_FAILED']);
    expect(warnings[0]?.message).toContain(`child boom ${tag}`);
  });
});
