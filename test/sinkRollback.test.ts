/**
 * A sink under a Redis that rolls back: restarted from an RDB snapshot older
 * than its last writes (SAVE, more writes, kill -9, start again from the old
 * dump), as a failover to a replica that was behind does. Outside review C
 * found it silent: events added after the snapshot that the sink had not read
 * were gone with no word (also with `noAck`), and events it had read and
 * still held (buffered, in a handler) were dropped as "taken over", told
 * NotOwnedError by `inProgress()`, or never retried after a failed handler,
 * with nothing counted. README "Retention and losses" promises: the loss is
 * said (how many is unknown); events the sink holds are handed out / kept
 * (it has their bytes); one that fails in its handler, which Redis can no
 * longer redeliver, is counted lost. Both clients.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, NotOwnedError, type SinkEvent, type SinkOptions, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  type ClientKind,
  connect,
  recordingLogger,
  stays,
  uniqueName,
  waitFor,
  within,
} from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** What a sink says when it finds Redis rolled back. */
const ROLLED_BACK = /Redis lost entries it had acknowledged/;

type LogLine = ReturnType<typeof recordingLogger>['lines'][number];

async function setup(ctx: TestContext, kind: ClientKind, options: SinkOptions, args?: string[]) {
  const server = await RedisServer.start(args ? { args } : undefined);
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('rollback'), c.redis, { logger: logger as Logger, maxLen: 0 });
  const sink = await s.newSink('g', { blockMs: 100, ...options });
  ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
  const warned = (re: RegExp) => lines.some((l) => l.level === 'warn' && re.test(String(l.msg)));
  /** Adds `text` once Redis is back from a restart (adds fail while it is down). */
  const addAfterRestart = (text: string) =>
    waitFor(() => s.add('e', text).catch(() => undefined), { timeout: 10_000, what: `add ${text} after the restart` });
  return { server, c, s, sink, lines, warned, addAfterRestart };
}

/** Pending entries of group `g` on `key`. */
async function pendingCount(c: { cmd(...a: unknown[]): Promise<unknown> }, key: string): Promise<number> {
  return Number(((await c.cmd('XPENDING', key, 'g')) as unknown[])[0]);
}

describe.concurrent.each(CLIENT_KINDS)('sink under a Redis rolled back to an older snapshot (%s)', (kind) => {
  for (const noAck of [false, true]) {
    it(`unread events gone with the snapshot are said lost${noAck ? ' (noAck)' : ''}; later events are delivered`, async (ctx) => {
      const { server, c, s, sink, warned, addAfterRestart } = await setup(ctx, kind, {
        ackGracePeriodMs: 4000,
        bufferSize: 5,
        maxPolled: 5,
        noAck,
      });
      const sub = sink.subscribe();
      const it0 = sub[Symbol.asyncIterator]();
      for (let i = 0; i < 3; i++) await s.add('e', `a${i}`);
      for (let i = 0; i < 3; i++) await ((await within(it0.next(), 10_000, 'a')).value as SinkEvent).ack();
      await c.cmd('SAVE'); // the snapshot: a0..a2
      for (let i = 0; i < 50; i++) await s.add('e', `b${i}`); // b0..b4 buffered, 45 never read (backpressure)
      await waitFor(() => sub.size >= 5, { what: 'buffer full' });
      await server.restart();
      const n0 = await addAfterRestart('n0');
      const got: string[] = [];
      for (;;) {
        const ev = (await within(it0.next(), 10_000, 'next event')).value as SinkEvent;
        got.push(ev.text());
        await ev.ack();
        if (ev.id === n0) break;
      }
      // b0..b4 (and any read ahead of the buffer) were in hand: handed out; the rest went with the
      // snapshot unread: said lost.
      expect(got.slice(0, 5)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
      expect(got.at(-1)).toBe('n0');
      expect(got.filter((t) => t.startsWith('b')).length).toBeLessThan(50);
      await waitFor(() => warned(ROLLED_BACK) && warned(/how many is unknown/), { what: 'the loss said' });
    }, 30_000);
  }

  /**
   * A sink whose buffer holds b0..b4, read after the snapshot, when Redis
   * restarts from it (a0 before it, acked); `downUntil`: Redis stays down
   * until it holds (the restart is slow).
   */
  async function bufferedAtRollback(ctx: TestContext, grace: number, downUntil?: (lines: LogLine[]) => boolean) {
    const f = await setup(ctx, kind, { ackGracePeriodMs: grace, bufferSize: 5, maxPolled: 5 });
    const sub = f.sink.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    await f.s.add('e', 'a0');
    await ((await within(it0.next(), 10_000, 'a0')).value as SinkEvent).ack();
    await f.c.cmd('SAVE'); // the snapshot: a0, acked
    for (let i = 0; i < 5; i++) await f.s.add('e', `b${i}`);
    await waitFor(() => sub.size >= 5, { what: 'b0..b4 buffered' });
    const restartedAt = Date.now();
    if (downUntil) {
      await f.server.kill();
      await waitFor(() => downUntil(f.lines), { timeout: 10_000, what: 'Redis down long enough' });
    }
    await f.server.restart(); // b0..b4: gone from Redis, only in this sink's buffer
    const n0 = await f.addAfterRestart('n0');
    /** Takes events up to n0, acking each. */
    const upToN0 = async () => {
      const got: string[] = [];
      for (;;) {
        const ev = (await within(it0.next(), 10_000, 'next event')).value as SinkEvent;
        got.push(ev.text());
        await ev.ack();
        if (ev.id === n0) return got;
      }
    };
    return { ...f, restartedAt, upToN0 };
  }

  it('events buffered when Redis rolled back are handed out, not dropped as "taken over"', async (ctx) => {
    const grace = 3000;
    const { lines, warned, restartedAt, upToN0 } = await bufferedAtRollback(ctx, grace);
    await waitFor(() => warned(ROLLED_BACK), { what: 'the rollback found' });
    // The subscriber takes its next event after half a grace period (not stalled: within one):
    // the ownership check of the buffer runs first.
    await waitFor(() => Date.now() - restartedAt >= grace / 2, { what: 'half a grace period since the restart' });
    expect(await upToN0()).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'n0']);
    expect(lines.some((l) => /taken over/.test(String(l.msg)))).toBe(false);
  }, 30_000);

  it('events buffered when Redis rolled back, released behind a stalled subscriber, are counted lost', async (ctx) => {
    // 1500 ms: with 500 a loaded CI run released the buffer before it held all five (b0..b4 buffered timed out).
    const { sink, warned, upToN0, lines } = await bufferedAtRollback(ctx, 1500);
    // The subscriber takes nothing for a grace period: its buffer is released, and nothing can
    // give b0..b4 back (Redis has neither the entries nor their pending entries).
    // Failed now and then in loaded full runs (node-redis; not alone): say what the sink counted and logged.
    await waitFor(() => sink.counters.lost === 5, { timeout: 10_000, what: 'b0..b4 counted lost' }).catch((err: unknown) => {
      const log = lines.map((l) => String(l.msg)).join(' | ');
      throw new Error(`${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${log}`);
    });
    expect(warned(/released from a stalled subscriber: they cannot be redelivered/)).toBe(true);
    expect(await upToN0()).toEqual(['n0']);
  }, 30_000);

  it('events buffered when Redis rolled back, released behind a stalled subscriber while Redis is still down, are counted lost', async (ctx) => {
    // Failed now and then in loaded full runs: a slow restart let the release's give-back fail, and
    // the sink said they "come back with their delivery count raised": Redis had lost them, nothing
    // came back, nothing was counted.
    const failedGiveBack = (lines: LogLine[]) =>
      lines.some((l) => /could not give back events never handed out/.test(String(l.msg)));
    const { sink, upToN0, lines } = await bufferedAtRollback(ctx, 1500, failedGiveBack);
    await waitFor(() => sink.counters.lost === 5, { timeout: 10_000, what: 'b0..b4 counted lost' }).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${lines.map((l) => String(l.msg)).join(' | ')}`,
      );
    });
    expect(await upToN0()).toEqual(['n0']);
  }, 30_000);

  it('inProgress() of an event Redis lost under its handler lets the handler go on (no NotOwnedError)', async (ctx) => {
    const { server, c, s, sink, addAfterRestart } = await setup(ctx, kind, { ackGracePeriodMs: 2000 });
    const it0 = sink.subscribe()[Symbol.asyncIterator]();
    await s.add('e', 'a0');
    await ((await within(it0.next(), 10_000, 'a0')).value as SinkEvent).ack();
    await c.cmd('SAVE');
    await s.add('e', 'b0');
    const ev = (await within(it0.next(), 10_000, 'b0')).value as SinkEvent; // a long handler runs on b0
    await server.restart(); // b0 is nowhere in Redis now: only in this handler's hands
    await addAfterRestart('n0');
    // Answered once Redis is back: resolves (the handler goes on), never NotOwnedError (nobody else has b0).
    const outcome = await waitFor(
      () =>
        ev.inProgress().then(
          () => 'ok',
          (e: Error) => (e instanceof NotOwnedError ? `NotOwnedError: ${e.message}` : undefined),
        ),
      { timeout: 10_000, what: 'inProgress answered' },
    );
    expect(outcome).toBe('ok');
  }, 30_000);

  it('process(): a handler failing on an event Redis lost under it: counted lost (it cannot be redelivered)', async (ctx) => {
    const { server, c, s, sink, lines, addAfterRestart } = await setup(ctx, kind, { ackGracePeriodMs: 2000 });
    const seen: string[] = [];
    let restarted!: () => void;
    const restartedP = new Promise<void>((r) => {
      restarted = r;
    });
    let inHandler!: () => void;
    const inHandlerP = new Promise<void>((r) => {
      inHandler = r;
    });
    const run = sink
      .process(
        async (ev) => {
          seen.push(ev.text());
          if (ev.text() === 'b0') {
            inHandler();
            await restartedP;
            throw new Error('downstream failed');
          }
        },
        { retry: { delayMs: 100, factor: 1, maxDelayMs: 100, jitter: 0 } },
      )
      .catch(() => {});
    ctx.onTestFinished(async () => {
      await within(sink.close(), 10_000, 'close');
      await run;
    });
    await s.add('e', 'a0');
    await waitFor(async () => seen.includes('a0') && (await pendingCount(c, s.key)) === 0, { what: 'a0 acked' });
    await c.cmd('SAVE');
    await s.add('e', 'b0');
    await inHandlerP;
    await server.restart();
    await addAfterRestart('n0');
    restarted();
    await waitFor(() => seen.includes('n0'), { timeout: 10_000, what: 'n0' });
    // b0 failed and Redis has neither its entry nor its pending entry: nothing can redeliver it.
    await waitFor(() => sink.counters.lost === 1, { timeout: 10_000, what: 'b0 counted lost' });
    expect(seen.filter((t) => t === 'b0')).toHaveLength(1);
    expect(lines.some((l) => l.level === 'warn' && /given back \(nack\): they cannot be redelivered/.test(String(l.msg)))).toBe(
      true,
    );
  }, 30_000);

  // Guard against a false alarm (README: AOF restarts keep the entries and raise nothing): the
  // entry the sink read last is still there after the restart, so no rollback is said.
  it('a restart with AOF (nothing lost) says nothing of a rollback; buffered events are handed out', async (ctx) => {
    const { server, s, sink, lines, addAfterRestart } = await setup(
      ctx,
      kind,
      { ackGracePeriodMs: 3000, bufferSize: 5, maxPolled: 5 },
      ['--appendonly', 'yes', '--appendfsync', 'always'],
    );
    const sub = sink.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 8; i++) await s.add('e', `b${i}`); // b0..b4 buffered, b5..b7 unread
    await waitFor(() => sub.size >= 5, { what: 'buffer full' });
    await server.restart();
    const n0 = await addAfterRestart('n0');
    const got: string[] = [];
    for (;;) {
      const ev = (await within(it0.next(), 10_000, 'next event')).value as SinkEvent;
      got.push(ev.text());
      await ev.ack();
      if (ev.id === n0) break;
    }
    expect(got).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'n0']);
    // The check after the reconnect runs within a quarter grace period: nothing said for several.
    await stays(() => !lines.some((l) => ROLLED_BACK.test(String(l.msg))), 1500, 'no rollback said');
    expect(sink.counters.lost).toBe(0);
  }, 30_000);
});
