/**
 * Sink fault tests, each on its own private redis-server, with both clients:
 * the Go defects of SEMANTICS.md section 3 that need faults (3, 4, 5, 9),
 * Redis restarts, killed connections and close() during an outage.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  type Logger,
  type Sink,
  type SinkEvent,
  type SinkOptions,
  Stream,
  type StreamOptions,
} from '../packages/pulse-streaming/src/index.js';
import { mapRecord as rec } from '../packages/pulse-streaming/src/internal/replies.js';
import {
  CLIENT_KINDS,
  type ClientKind,
  collect,
  connect,
  recordingLogger,
  stays,
  take,
  uniqueName,
  waitFor,
  within,
} from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 200;
const BLOCK = 100;
const WAIT = { timeout: 8000 };

/** A private server and a client on it, released when the test ends. */
async function setup(ctx: TestContext, kind: ClientKind, serverArgs: string[] = []) {
  const server = await RedisServer.start({ args: serverArgs });
  const release: Array<() => Promise<unknown>> = [() => server.stop()];
  ctx.onTestFinished(async () => {
    for (const f of release.reverse()) await f().catch(() => {});
  });
  const c = await connect(kind, server.url);
  release.push(() => c.close());
  const { logger, lines } = recordingLogger();
  const name = uniqueName('fault');
  const env = {
    server,
    c,
    lines,
    stream(options?: StreamOptions): Stream {
      return new Stream(name, c.redis, { logger: logger as Logger, ...options });
    },
    async sink(stream: Stream, options?: SinkOptions): Promise<Sink> {
      const k = await stream.newSink('sink', { blockMs: BLOCK, ackGracePeriodMs: GRACE, ...options });
      release.push(() => within(k.close(), 10_000, 'close'));
      return k;
    },
    defer(f: () => Promise<unknown>): void {
      release.push(f);
    },
    async time(): Promise<number> {
      const [sec, usec] = (await c.cmd('TIME')) as [string, string];
      return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    },
    async consumers(key: string): Promise<Array<{ name: string; pending: number; idle: number }>> {
      try {
        return ((await c.cmd('XINFO', 'CONSUMERS', key, 'sink')) as unknown[]).map((x) => {
          const r = rec(x);
          return { name: String(r.name), pending: Number(r.pending), idle: Number(r.idle) };
        });
      } catch {
        return [];
      }
    },
    async pending(key: string): Promise<number> {
      return Number(((await c.cmd('XPENDING', key, 'sink')) as unknown[])[0]);
    },
    async score(stream: Stream, consumer: string): Promise<number | undefined> {
      const v = await c.cmd('ZSCORE', `{${stream.key}}:sink:sink:consumers`, consumer);
      return v === null || v === undefined ? undefined : Number(v);
    },
    /** An instance's last liveness beat (sink-wide, Redis server ms; issue 20). */
    async beat(consumer: string): Promise<number | undefined> {
      const v = await c.cmd('ZSCORE', '{pulse:sink:sink}:instances', consumer);
      return v === null || v === undefined ? undefined : Number(v);
    },
    async commandCalls(names: string[]): Promise<number> {
      const info = String(await c.cmd('INFO', 'commandstats'));
      let total = 0;
      for (const n of names) {
        const m = new RegExp(`cmdstat_${n.replace(/[|]/g, '\\|')}:calls=(\\d+)`).exec(info);
        if (m) total += Number(m[1]);
      }
      return total;
    },
  };
  return env;
}

describe.concurrent.each(CLIENT_KINDS)('sink faults (%s)', (kind) => {
  // First: its close() during the outage takes the longest (steps of the close bounded one by one),
  // and the file's concurrent tests start a few at a time.
  it('close() during an outage (Redis stopped with SIGSTOP for a while) resolves', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, false);
    const e1 = await s.add('event', 'x');
    await waitFor(() => got.some((e) => e.id === e1), WAIT);
    env.server.pause();
    env.defer(async () => env.server.resume());
    try {
      // The outage has lasted a while when the application gives up and closes: the sink's
      // keep-alive and reclaim timers have sent commands that Redis will not answer.
      await new Promise((r) => setTimeout(r, 3 * GRACE));
      await within(sink.close(), 10_000, 'close() while Redis is stopped');
      await within(run, 5000, 'subscription ends');
      expect(sink.isClosed()).toBe(true);
    } finally {
      env.server.resume();
    }
  });

  it('a crashed consumer restarted after 2 x grace loses none of its events (Go defect 3)', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.add('event', `p${i}`)) as string);
    // A consumer of the sink reads 5 events, keeps alive once, and crashes: nothing acked.
    await env.c.cmd('XGROUP', 'CREATE', s.key, 'sink', '0');
    await env.c.cmd('XREADGROUP', 'GROUP', 'sink', 'crashed', 'COUNT', 5, 'STREAMS', s.key, '>');
    await env.c.cmd('ZADD', `{${s.key}}:sink:sink:consumers`, await env.time(), 'crashed');
    // More than 2 x grace of silence: the consumer is stale.
    await waitFor(
      async () => {
        const cs = await env.consumers(s.key);
        const score = (await env.score(s, 'crashed')) ?? 0;
        return (cs[0]?.idle ?? 0) > 2 * GRACE + 50 && (await env.time()) - score > 2 * GRACE + 50;
      },
      { ...WAIT, what: 'crashed consumer stale' },
    );

    expect(await env.consumers(s.key)).toEqual([{ name: 'crashed', pending: 5, idle: expect.any(Number) }]);

    // Had the stale consumer been deleted before its entries were claimed (Go), XGROUP DELCONSUMER
    // would have dropped them from the pending list and no instance could ever get them.
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, 'tolerant');
    await waitFor(() => got.length >= 5, { ...WAIT, what: 'the crashed consumer’s 5 events' });
    expect(got.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(got.every((e) => e.deliveryCount === 2)).toBe(true);
    // Once its entries were claimed, the dead consumer leaves the group.
    await waitFor(async () => !(await env.consumers(s.key)).some((x) => x.name === 'crashed'), {
      ...WAIT,
      what: 'crashed consumer removed',
    });
    expect(await env.score(s, 'crashed')).toBeUndefined();
    await waitFor(async () => (await env.pending(s.key)) === 0, WAIT);
    await sink.close();
    await run;
  });

  it('a subscriber taking 3 x grace per event is not declared dead (Go defect 5)', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const grace = 400;
    const slow = await env.sink(s, { bufferSize: 1, ackGracePeriodMs: grace });
    for (let i = 0; i < 2; i++) await s.add('event', `p${i}`);
    const handled: string[] = [];
    const work = (async () => {
      for await (const ev of slow) {
        await new Promise((r) => setTimeout(r, 3 * grace)); // the handler's slow work
        handled.push(ev.id);
        await ev.ack();
        if (handled.length === 2) break;
      }
    })();
    // Another live instance (not reading) can hold the lease and run the stale-consumer cleanup meanwhile.
    const other = await env.sink(s, { ackGracePeriodMs: grace });
    let worst = 0;
    let missing = 0;
    const deadline = Date.now() + 15_000;
    while (handled.length < 2 && Date.now() < deadline) {
      const now = await env.time();
      const score = await env.score(s, slow.consumerName);
      if (score === undefined) missing++;
      else worst = Math.max(worst, now - score);
      if (!(await env.consumers(s.key)).some((x) => x.name === slow.consumerName)) missing++;
      await new Promise((r) => setTimeout(r, 25));
    }
    await within(work, 10_000, 'slow subscriber');
    expect(missing).toBe(0);
    expect(worst).toBeLessThan(2 * grace);
    expect((await env.consumers(s.key)).map((x) => x.name)).toContain(slow.consumerName);
    expect(handled.length).toBe(2);
    await other.close();
  });

  it('NOGROUP: a destroyed group is recreated at 0 with a warning, later events are delivered (Go defect 9)', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, 'tolerant');
    const e1 = await s.add('event', 'before');
    await waitFor(() => got.some((e) => e.id === e1), WAIT);
    const warnsBefore = env.lines.filter((l) => l.level === 'warn').length;
    await env.c.cmd('XGROUP', 'DESTROY', s.key, 'sink');
    const e2 = await s.add('event', 'after');
    await waitFor(() => got.some((e) => e.id === e2), { ...WAIT, what: 'event added after the group was destroyed' });
    expect(env.lines.filter((l) => l.level === 'warn').length).toBeGreaterThan(warnsBefore);
    const groups = ((await env.c.cmd('XINFO', 'GROUPS', s.key)) as unknown[]).map((g) => rec(g).name);
    expect(groups).toEqual(['sink']);
    const e3 = await s.add('event', 'later');
    await waitFor(() => got.some((e) => e.id === e3), WAIT);
    await waitFor(async () => (await env.pending(s.key)) === 0, WAIT);
    await sink.close();
    await run;
  });

  it('NOGROUP: a deleted stream key is not resurrected, no hot loop, and events are delivered once a producer adds again', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const sink = await env.sink(s, { ackGracePeriodMs: 400 });
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, 'tolerant');
    const e1 = await s.add('event', 'before');
    await waitFor(() => got.some((e) => e.id === e1), WAIT);
    const warnsBefore = env.lines.filter((l) => l.level === 'warn').length;
    await env.c.cmd('DEL', s.key);
    await waitFor(() => env.lines.filter((l) => l.level === 'warn').length > warnsBefore, {
      ...WAIT,
      what: 'a warning about the missing stream',
    });
    const reads = ['xreadgroup', 'xread', 'xgroup|create', 'xgroup'];
    const calls0 = await env.commandCalls(reads);
    const total0 = Number(/total_commands_processed:(\d+)/.exec(String(await env.c.cmd('INFO', 'stats')))?.[1]);
    const t0 = Date.now();
    await stays(async () => Number(await env.c.cmd('EXISTS', s.key)) === 0, 1000, 'the stream key stays deleted');
    const seconds = (Date.now() - t0) / 1000;
    const calls = (await env.commandCalls(reads)) - calls0;
    const total = Number(/total_commands_processed:(\d+)/.exec(String(await env.c.cmd('INFO', 'stats')))?.[1]) - total0;
    expect(calls / seconds).toBeLessThan(20);
    // Our own EXISTS polling is ~50/s; a hot loop would be thousands.
    expect(total / seconds).toBeLessThan(400);
    const e2 = await s.add('event', 'after');
    await waitFor(() => got.some((e) => e.id === e2), { ...WAIT, what: 'event added after the key came back' });
    await sink.close();
    await run;
  });

  it('Redis restarted without persistence: no crash, events added after the restart are delivered', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, 'tolerant');
    const e1 = await s.add('event', 'before');
    await waitFor(() => got.some((e) => e.id === e1), WAIT);
    await env.server.restart();
    const e2 = await waitFor(() => s.add('event', 'after'), { ...WAIT, what: 'add after restart' });
    await waitFor(() => got.some((e) => e.id === e2), { timeout: 10_000, what: 'event added after the restart' });
    const e3 = await s.add('event', 'later');
    await waitFor(() => got.some((e) => e.id === e3), WAIT);
    expect(sink.isClosed()).toBe(false);
    await within(sink.close(), 10_000, 'close');
    await run;
  });

  it('Redis restarted with AOF: no phantom losses from the entries-read counter AOF does not keep, real ones still counted', async (ctx) => {
    const env = await setup(ctx, kind, ['--appendonly', 'yes', '--appendfsync', 'always']);
    // maxLen 20: trimming passes where the group was before each blocking read, so checks must count.
    const s = env.stream({ maxLen: 20 });
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, 'tolerant');
    // One at a time, each read by a blocking XREADGROUP: Redis 7.0 logs those
    // reads to the AOF as XCLAIMs, without the group's entries-read counter.
    for (let i = 0; i < 150; i++) {
      const id = await s.add('event', `a${i}`);
      await waitFor(() => got.some((e) => e.id === id), WAIT);
    }
    await waitFor(async () => (await env.pending(s.key)) === 0, { ...WAIT, what: 'all acked' });
    await env.server.restart();
    const after: string[] = [];
    for (let i = 0; i < 150; i++) {
      const id = await waitFor(() => s.add('event', `b${i}`), { ...WAIT, what: 'add after restart' });
      after.push(id as string);
      await waitFor(() => got.some((e) => e.id === id), { timeout: 10_000, what: 'event added after the restart' });
    }
    // Keep-alives (grace / 4) ran their checks meanwhile: none may count a loss.
    await stays(() => sink.counters.lost === 0, 4 * GRACE, 'no phantom loss');
    // A real loss after the restart is still counted: entries added and trimmed in one command.
    await env.c.cmd(
      'EVAL',
      "for i = 1, 100 do redis.call('XADD', KEYS[1], 'MAXLEN', '=', '10', '*', 'n', 'event', 'p', 'c' .. i) end",
      1,
      s.key,
    );
    await waitFor(() => got.filter((e) => e.text().startsWith('c')).length + sink.counters.lost >= 100, {
      ...WAIT,
      what: 'the burst handled or reported lost',
    });
    expect(got.filter((e) => e.text().startsWith('c')).length + sink.counters.lost).toBe(100);
    expect(sink.counters.lost).toBeGreaterThan(0);
    await within(sink.close(), 10_000, 'close');
    await run;
  });

  it('killed client connections: the sink reconnects and keeps delivering', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, 'tolerant');
    const e1 = await s.add('event', 'before');
    await waitFor(() => got.some((e) => e.id === e1), WAIT);
    await env.server.killClients();
    const e2 = await waitFor(() => s.add('event', 'after'), { ...WAIT, what: 'add after CLIENT KILL' });
    await waitFor(() => got.some((e) => e.id === e2), { timeout: 10_000, what: 'event added after CLIENT KILL' });
    await waitFor(async () => (await env.pending(s.key)) === 0, WAIT);
    await within(sink.close(), 10_000, 'close');
    await run;
  });

  it('close() during an outage (Redis killed) resolves', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream();
    const sink = await env.sink(s);
    const got: SinkEvent[] = [];
    const run = collect(sink.subscribe(), got, false);
    const e1 = await s.add('event', 'x');
    await waitFor(() => got.some((e) => e.id === e1), WAIT);
    await env.server.kill('SIGKILL');
    await within(sink.close(), 10_000, 'close() while Redis is down');
    await within(run, 5000, 'subscription ends');
    expect(sink.isClosed()).toBe(true);
  });
});

// After the tests above: it shifts this process's clock, which they must not see. Both clients at
// once, under the one shift.
describe('sink liveness clock', () => {
  const realNow = Date.now;
  const skew = -3_600_000; // this host's clock is an hour behind Redis
  beforeAll(() => {
    Date.now = () => realNow() + skew;
  });
  afterAll(() => {
    Date.now = realNow;
  });
  describe.concurrent.each(CLIENT_KINDS)('(%s)', (kind) => {
    it('keep-alives and staleness use Redis server time, not the host clock (Go defect 4)', async (ctx) => {
      const env = await setup(ctx, kind);
      const s = env.stream();
      const grace = 400;
      const a = await env.sink(s, { ackGracePeriodMs: grace });
      const b = await env.sink(s, { ackGracePeriodMs: grace });
      const subA = a.subscribe(); // b stays live but does not read yet
      // Scores are Redis server milliseconds and keep moving.
      const first = await waitFor(() => env.beat(a.consumerName), WAIT);
      expect(Math.abs((await env.time()) - first)).toBeLessThan(5000);
      expect(Math.abs(Date.now() - first)).toBeGreaterThan(3_000_000);
      await waitFor(async () => ((await env.beat(a.consumerName)) ?? 0) > first, WAIT);
      // Both instances stay live members through several cleanup rounds.
      await stays(
        async () => {
          const now = await env.time();
          const sa = (await env.beat(a.consumerName)) ?? 0;
          const sb = (await env.beat(b.consumerName)) ?? 0;
          return now - sa < 2 * grace && now - sb < 2 * grace;
        },
        4 * grace,
        'both consumers live',
      );
      // Reclaim still works off server idle times: a's unacked event reaches b after the grace period.
      const id = await s.add('event', 'x');
      const [ev] = await take(subA, 1);
      expect(ev?.id).toBe(id);
      a.unsubscribe(subA);
      const gotB: SinkEvent[] = [];
      const runB = collect(b.subscribe(), gotB, 'tolerant');
      await waitFor(() => gotB.find((e) => e.id === id && e.deliveryCount === 2), { ...WAIT, what: 'redelivery to b' });
      await b.close();
      await runB;
    });
  });
});
