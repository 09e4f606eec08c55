/**
 * Idle cost on a Redis Cluster (issue 20): a sink reads each hash slot on
 * its own, so an idle slot's read blocks long instead of coming back every
 * `blockMs`, and CLIENT UNBLOCK, sent to that slot's node, ends it when the
 * sink's streams there change or a buffer fills. Where CLIENT UNBLOCK is
 * refused, reads block `blockMs` as before. With both clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Logger,
  type SinkEvent,
  type SinkOptions,
  Stream,
  type StreamOptions,
  silentLogger,
} from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { connectCluster, namesInDistinctSlots } from './support/clusterClients.js';
import { RedisCluster, rawCommandBulk } from './support/redisCluster.js';
import { type RedisServer, rawCommand } from './support/redisServer.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

/** Connections of sink `sink`'s read loops blocked in a read now, over every master. */
async function blockedReads(sink: string): Promise<number> {
  let n = 0;
  for (const m of await cluster.masters()) n += await blockedReadsOn(m, sink);
  return n;
}

/** Connections of sink `sink`'s read loops blocked in a read on `node` now. */
async function blockedReadsOn(node: RedisServer, sink: string): Promise<number> {
  return (await blockedIdsOn(node, sink)).length;
}

/** XREADGROUP calls the masters ran so far. */
function xreadgroupCalls(): Promise<number> {
  return commandCalls('xreadgroup');
}

/** Calls of `command` (as INFO commandstats names it: `client|unblock`) every node ran so far. */
async function commandCalls(command: string): Promise<number> {
  let n = 0;
  for (const node of cluster.nodes.filter((x) => x.running)) {
    const stats = await rawCommandBulk(node.port, 'INFO commandstats');
    n += Number(new RegExp(`cmdstat_${command.replace('|', '\\|')}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  }
  return n;
}

/** Client IDs of sink `sink`'s read connections blocked on `node` now. */
async function blockedIdsOn(node: RedisServer, sink: string): Promise<number[]> {
  const ids: number[] = [];
  for (const line of (await rawCommandBulk(node.port, 'CLIENT LIST')).split('\n')) {
    if (line.includes(`name=pulse:sink:${sink}:read`) && / flags=\S*b/.test(line) && line.includes('cmd=xreadgroup'))
      ids.push(Number(/(?:^| )id=(\d+)/.exec(line)?.[1]));
  }
  return ids;
}

/** Two streams whose keys share one hash slot (one hash tag). */
function sameSlot(c: TestClient, options?: StreamOptions): [Stream, Stream] {
  const tag = uniqueName('t');
  return [new Stream(`{${tag}}a`, c.redis, options), new Stream(`{${tag}}b`, c.redis, options)];
}

/** An event added to `s` now is the next one `it` yields (within 5 s): the sink reads `s` already. */
async function addsReachIt(s: Stream, it: AsyncIterator<SinkEvent>): Promise<void> {
  const id = await s.add('e', 'next');
  const [ev] = await take(it, 1, 5000);
  expect(ev?.id).toBe(id);
  await ev?.ack();
}

/**
 * A sink over `n` new streams in distinct hash slots, subscribed, once every
 * slot's read is blocked; `close()` closes it and destroys the streams.
 */
async function sinkOverSlots(c: TestClient, n: number, options: SinkOptions, streamOptions?: StreamOptions) {
  const streams = namesInDistinctSlots(n, 'sl').map((name) => new Stream(name, c.redis, streamOptions));
  const [first, ...rest] = streams as [Stream, ...Stream[]];
  const sinkName = uniqueName('slots');
  const sink = await first.newSink(sinkName, options);
  const close = async () => {
    await sink.close();
    await Promise.all(streams.map((s) => s.destroy()));
  };
  try {
    for (const s of rest) await sink.addStream(s);
    const sub = sink.subscribe();
    await waitFor(async () => (await blockedReads(sinkName)) === streams.length, { timeout: 10_000, what: 'every slot blocked' });
    return { streams, first, rest, sinkName, sub, it: sub[Symbol.asyncIterator](), close };
  } catch (err) {
    await close();
    throw err;
  }
}

describe.each(CLIENT_KINDS)('idle sink on a cluster (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectCluster(kind, cluster);
  });
  afterAll(() => c?.close());

  it('an idle slot is not read again every blockMs, and an event still arrives at once', async () => {
    const { streams, sinkName, it, close } = await sinkOverSlots(c, 12, { blockMs: 150 });
    try {
      const before = await xreadgroupCalls();
      // Ten blockMs: each slot's read would have come back ten times (120 reads against a bound of 12).
      await new Promise((r) => setTimeout(r, 1500));
      const reads = (await xreadgroupCalls()) - before;
      expect(reads).toBeLessThan(streams.length);
      expect(await blockedReads(sinkName)).toBe(streams.length);
      await addsReachIt(streams[5] as Stream, it);
    } finally {
      await close();
    }
  });

  // The long block is set in the read's arguments by position: found by a search for BLOCK, a sink
  // named BLOCK had its consumer name replaced by the block's length (XPENDING named consumer 1800000).
  it('a sink named BLOCK reads as its own consumer in a long idle block', async () => {
    const s = new Stream(uniqueName('blk'), c.redis);
    const sink = await s.newSink('BLOCK', { blockMs: 300 });
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      await waitFor(async () => (await blockedReads('BLOCK')) === 1, { timeout: 10_000, what: 'the slot blocked' });
      const id = await s.add('e', 'x');
      const [ev] = await take(it, 1, 5000);
      expect(ev?.id).toBe(id);
      const pending = (await c.cmd('XPENDING', s.key, 'BLOCK', '-', '+', 10)) as unknown[][];
      expect(pending.map((p) => String(p[1]))).toEqual([sink.consumerName]);
      await ev?.ack();
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it('addStream and removeStream in a slot already read take effect without waiting for its block to end', async () => {
    const [a, b] = sameSlot(c);
    expect(slotOf(a.key)).toBe(slotOf(b.key));
    const sinkName = uniqueName('wake');
    // A block far longer than the waits below: only CLIENT UNBLOCK can end it in time.
    const sink = await a.newSink(sinkName, { blockMs: 120_000 });
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'the read blocked' });
      await sink.addStream(b);
      await addsReachIt(b, it);

      await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'the read blocked again' });
      await sink.removeStream(b);
      await b.add('e', 'b2');
      const a1 = await a.add('e', 'a1');
      const [next] = await take(it, 1, 5000);
      // A read still covering b would have brought b2 first.
      expect(next?.id).toBe(a1);
      expect((next as SinkEvent).streamName).toBe(a.name);
      await next?.ack();
    } finally {
      await sink.close();
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });

  it('when CLIENT UNBLOCK is refused, reads block blockMs only, and addStream still takes effect', async (ctx) => {
    // A client of its own: a refusal holds for every connection of the client (for 10 minutes).
    const own = await connectCluster(kind, cluster);
    ctx.onTestFinished(() => own.close());
    const [a, b] = sameSlot(own);
    const sinkName = uniqueName('refused');
    const masters = await cluster.masters();
    for (const m of masters) await rawCommand(m.port, 'ACL SETUSER default -client|unblock');
    const sink = await a.newSink(sinkName, { blockMs: 300 });
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'the read blocked' });
      const before = await xreadgroupCalls();
      // Within five blockMs the read came back and went out again, as it does on one node (a long
      // block would not come back at all).
      await waitFor(async () => (await xreadgroupCalls()) - before >= 2, {
        timeout: 1500,
        interval: 100,
        what: 'the read back twice',
      });
      await sink.addStream(b);
      await addsReachIt(b, it);
    } finally {
      for (const m of masters) await rawCommand(m.port, 'ACL SETUSER default +@all');
      await sink.close();
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });

  it('long reads left out while a buffer fills are ended: what is read stays within bufferSize + maxPolled', async () => {
    // Subscribed, never consumed: the buffer fills and stays full.
    const { streams, first, rest, sinkName, sub, close } = await sinkOverSlots(c, 12, { bufferSize: 10, maxPolled: 10 });
    try {
      for (let i = 0; i < 30; i++) await first.add('e', `f${i}`);
      // The buffer is full once 10 are read; the other slots' long reads must not stay out.
      await waitFor(async () => (await blockedReads(sinkName)) === 0, { timeout: 10_000, what: 'the long reads ended' });
      for (const s of rest) for (let i = 0; i < 30; i++) await s.add('e', `x${i}`);
      await new Promise((r) => setTimeout(r, 1000));
      let read = 0;
      for (const s of streams) read += Number(((await c.cmd('XPENDING', s.key, sinkName)) as unknown[])[0]);
      expect(read).toBeGreaterThanOrEqual(10);
      expect(read).toBeLessThanOrEqual(20);
      await sub[Symbol.asyncDispose]();
    } finally {
      await close();
    }
  });

  it('addStream during a backlog (checked reads in flight) delays nothing: every event arrives once', async () => {
    const [a, b] = sameSlot(c, { maxLen: 0 });
    const sinkName = uniqueName('backlog');
    for (let i = 0; i < 3000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => a.add('e', `a${i + j}`)));
    const sink = await a.newSink(sinkName, { startAt: 'oldest', bufferSize: 100, maxPolled: 100 });
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      const seen = new Map<string, number>();
      const got = await take(it, 200, 10_000);
      for (const ev of got) seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
      await Promise.all(got.map((ev) => ev.ack()));
      const t0 = Date.now();
      await sink.addStream(b);
      const b1 = await b.add('e', 'b1');
      while (!seen.has(b1)) {
        const [ev] = await take(it, 1, 10_000);
        if (!ev) break;
        seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
        await ev.ack();
      }
      expect(Date.now() - t0).toBeLessThan(10_000);
      const rest = await take(it, 3001 - seen.size, 20_000);
      for (const ev of rest) {
        seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
        await ev.ack();
      }
      expect(seen.size).toBe(3001);
      expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
      expect(sink.counters.redelivered).toBe(0);
    } finally {
      await sink.close();
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });

  it.each([
    ['a failover', async (slot: number) => (await cluster.failover(slot)).promoted],
    [
      'a slot migration',
      async (slot: number) => {
        const from = await cluster.masterOf(slot);
        const to = (await cluster.masters()).find((m) => m !== from);
        if (!to) throw new Error('no other master');
        await cluster.migrateSlot(slot, to);
        return to;
      },
    ],
  ] as const)(
    'after %s, addStream still ends the long read, now on the new master, at once',
    async (_, move) => {
      let [a, b] = sameSlot(c);
      // A slot whose master has a replica (an earlier failover may have left one without).
      while (!(await cluster.replicaOf(await cluster.masterOf(slotOf(a.key))))) [a, b] = sameSlot(c);
      const sinkName = uniqueName('moved');
      const sink = await a.newSink(sinkName, { blockMs: 120_000 });
      try {
        const it = sink.subscribe()[Symbol.asyncIterator]();
        await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'the read blocked' });
        const now = await move(slotOf(a.key));
        // Redis ends the read on the old node (UNBLOCKED, MOVED): the read goes out again, to the new one.
        await waitFor(async () => (await blockedReadsOn(now, sinkName)) === 1, { timeout: 10_000, what: 'the read moved' });
        await sink.addStream(b);
        await addsReachIt(b, it);
      } finally {
        await sink.close();
        await Promise.all([a.destroy(), b.destroy()]);
      }
    },
    60_000,
  );

  it('after its read connection was killed, a read still ends on addStream (the client does not send it again unprepared)', async () => {
    const [a, b] = sameSlot(c);
    const sinkName = uniqueName('killed');
    const sink = await a.newSink(sinkName, { blockMs: 120_000 });
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      const master = await cluster.masterOf(slotOf(a.key));
      await waitFor(async () => (await blockedIdsOn(master, sinkName)).length === 1, {
        timeout: 10_000,
        what: 'the read blocked',
      });
      const [killed] = await blockedIdsOn(master, sinkName);
      await rawCommand(master.port, `CLIENT KILL ID ${killed}`);
      await waitFor(async () => (await blockedIdsOn(master, sinkName)).some((id) => id !== killed), {
        timeout: 15_000,
        what: 'the read blocked again on a new connection',
      });
      await sink.addStream(b);
      await addsReachIt(b, it);
    } finally {
      await sink.close();
      await Promise.all([a.destroy(), b.destroy()]);
    }
  }, 60_000);

  it('once CLIENT UNBLOCK is refused while the sink runs, the reads that follow block blockMs, in every slot', async (ctx) => {
    const warned: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (_, msg) => void warned.push(msg ?? ''), child: () => logger };
    // A client of its own: a refusal holds for every connection of the client (for 10 minutes).
    const own = await connectCluster(kind, cluster);
    ctx.onTestFinished(() => own.close());
    const [a, b] = sameSlot(own, { logger });
    // A stream in another slot: its loop and connection are another's.
    let other = new Stream(uniqueName('o'), own.redis, { logger });
    while (slotOf(other.key) === slotOf(a.key)) other = new Stream(uniqueName('o'), own.redis, { logger });
    const sinkName = uniqueName('revoked');
    const sink = await a.newSink(sinkName, { blockMs: 300 });
    const nodes = cluster.nodes.filter((n) => n.running);
    try {
      await sink.addStream(other);
      const it = sink.subscribe()[Symbol.asyncIterator]();
      await waitFor(async () => (await blockedReads(sinkName)) === 2, { timeout: 10_000, what: 'both reads blocked' });
      for (const n of nodes) await rawCommand(n.port, 'ACL SETUSER default -client|unblock');
      // Refused: the reads already out wait for an event (or their block), which a1 and o1 bring.
      await sink.addStream(b);
      expect(warned.filter((m) => m.startsWith('CLIENT UNBLOCK refused'))).toHaveLength(1);
      const ids = [await b.add('e', 'b1'), await a.add('e', 'a1'), await other.add('e', 'o1')];
      const got = await take(it, 3, 5000);
      expect(got.map((ev) => ev.id).sort()).toEqual(ids.sort());
      await Promise.all(got.map((ev) => ev.ack()));
      const reads = await xreadgroupCalls();
      const probes = await commandCalls('client|id');
      // Both slots read every blockMs (about 6 reads each in 2 s): 8 reads within 2 s, and none probes
      // CLIENT UNBLOCK before each read (8 reads probed would be 8 probes).
      await waitFor(async () => (await xreadgroupCalls()) - reads >= 8, { timeout: 2000, interval: 100, what: '8 reads' });
      expect((await commandCalls('client|id')) - probes).toBe(0);
    } finally {
      for (const n of nodes) await rawCommand(n.port, 'ACL SETUSER default +@all');
      await sink.close();
      await Promise.all([a.destroy(), b.destroy(), other.destroy()]);
    }
  }, 60_000);

  it('reads left out while a buffer is over half full are ended when it fills: what is read stays within the bound', async () => {
    const {
      streams,
      first: hot,
      rest: idle,
      sinkName,
      it,
      close,
    } = await sinkOverSlots(c, 12, { bufferSize: 20, maxPolled: 20 });
    const pending = async () => {
      let n = 0;
      for (const s of streams) n += Number(((await c.cmd('XPENDING', s.key, sinkName)) as unknown[])[0]);
      return n;
    };
    try {
      // The buffer fills; 6 taken leave it over half full, where the idle slots could read again (blocking
      // blockMs); the hot stream fills it again at once; then every idle slot gets events.
      for (let i = 0; i < 40; i++) await hot.add('e', `h${i}`);
      await waitFor(async () => (await pending()) >= 20, { timeout: 10_000, what: 'the buffer full' });
      for (const ev of await take(it, 6, 5000)) await ev.ack();
      await waitFor(async () => (await pending()) >= 20, { timeout: 10_000, what: 'the buffer full again' });
      await Promise.all(idle.map((s) => Promise.all(Array.from({ length: 30 }, (_, i) => s.add('e', `x${i}`)))));
      let most = 0;
      for (let i = 0; i < 5; i++) {
        most = Math.max(most, await pending());
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(most).toBeLessThanOrEqual(40);
    } finally {
      await close();
    }
  }, 60_000);

  it("a buffer hovering near full does not end the idle slots' reads again at each fill", async () => {
    const {
      streams,
      first: hot,
      sinkName,
      it,
      close,
    } = await sinkOverSlots(c, 20, { bufferSize: 20, maxPolled: 20 }, { maxLen: 0 });
    try {
      // 600 events, taken more slowly than they come: the buffer fills, drains by one, fills again.
      let stop = false;
      const producer = (async () => {
        for (let i = 0; i < 600 && !stop; i++) {
          await hot.add('e', `h${i}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await waitFor(async () => (await blockedReads(sinkName)) < streams.length, { timeout: 5000, what: 'the buffer full' });
      const before = await commandCalls('client|unblock');
      const t0 = Date.now();
      let handled = 0;
      while (Date.now() - t0 < 3000) {
        const [ev] = await take(it, 1, 5000);
        await ev?.ack();
        handled++;
        await new Promise((r) => setTimeout(r, 10));
      }
      stop = true;
      await producer;
      expect(handled).toBeGreaterThan(50);
      // Each fill ending the 19 idle slots' reads would be hundreds in 3 s.
      expect((await commandCalls('client|unblock')) - before).toBeLessThan(2 * streams.length);
    } finally {
      await close();
    }
  }, 60_000);

  it('an event that came to an idle slot while the buffer was full is read as soon as the buffer empties', async () => {
    // blockMs far longer than the test waits: only the buffer emptying may end the pause after the fill.
    const { first: hot, rest, it, close } = await sinkOverSlots(c, 3, { bufferSize: 5, maxPolled: 5, blockMs: 20_000 });
    try {
      for (let i = 0; i < 10; i++) await hot.add('e', `h${i}`);
      const late = await (rest[0] as Stream).add('e', 'late');
      const t0 = Date.now();
      for (;;) {
        const [ev] = await take(it, 1, 10_000);
        await ev?.ack();
        if (ev?.id === late) break;
      }
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await close();
    }
  }, 60_000);
});
