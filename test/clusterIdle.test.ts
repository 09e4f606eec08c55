/**
 * Idle cost on a Redis Cluster (issue 20): a sink reads each hash slot on
 * its own, so an idle slot's read blocks long instead of coming back every
 * `blockMs`, and CLIENT UNBLOCK, sent to that slot's node, ends it when the
 * sink's streams there change. With both clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { connectCluster, namesInDistinctSlots } from './support/clusterClients.js';
import { RedisCluster, rawCommandBulk } from './support/redisCluster.js';
import { rawCommand } from './support/redisServer.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

/** Connections of sink `sink`'s read loops blocked in a read now, over every master. */
async function blockedReads(sink: string): Promise<number> {
  let n = 0;
  for (const m of await cluster.masters()) {
    for (const line of (await rawCommandBulk(m.port, 'CLIENT LIST')).split('\n')) {
      if (line.includes(`name=pulse:sink:${sink}:read`) && / flags=\S*b/.test(line) && line.includes('cmd=xreadgroup')) n++;
    }
  }
  return n;
}

/** XREADGROUP calls the masters ran so far. */
async function xreadgroupCalls(): Promise<number> {
  let n = 0;
  for (const m of await cluster.masters()) {
    n += Number(/cmdstat_xreadgroup:calls=(\d+)/.exec(await rawCommandBulk(m.port, 'INFO commandstats'))?.[1] ?? 0);
  }
  return n;
}

describe.each(CLIENT_KINDS)('idle sink on a cluster (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectCluster(kind, cluster);
  });
  afterAll(() => c?.close());

  it('an idle slot is not read again every blockMs, and an event still arrives at once', async () => {
    const names = namesInDistinctSlots(12, 'ci');
    const streams = names.map((n) => new Stream(n, c.redis));
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const sinkName = uniqueName('idle');
    const sink = await first.newSink(sinkName, { blockMs: 300 });
    try {
      for (const s of rest) await sink.addStream(s);
      const sub = sink.subscribe();
      await waitFor(async () => (await blockedReads(sinkName)) === streams.length, {
        timeout: 10_000,
        what: 'every slot blocked',
      });
      const before = await xreadgroupCalls();
      // Ten blockMs: each slot's read would have come back ten times.
      await new Promise((r) => setTimeout(r, 3000));
      const reads = (await xreadgroupCalls()) - before;
      expect(reads).toBeLessThan(streams.length);
      expect(await blockedReads(sinkName)).toBe(streams.length);
      const id = await (streams[5] as Stream).add('e', 'x');
      const [ev] = await take(sub[Symbol.asyncIterator](), 1, 3000);
      expect(ev?.id).toBe(id);
      await ev?.ack();
    } finally {
      await sink.close();
      await Promise.all(streams.map((s) => s.destroy()));
    }
  });

  it('addStream and removeStream in a slot already read take effect without waiting for its block to end', async () => {
    const tag = uniqueName('t');
    const a = new Stream(`{${tag}}a`, c.redis);
    const b = new Stream(`{${tag}}b`, c.redis);
    expect(slotOf(a.key)).toBe(slotOf(b.key));
    const sinkName = uniqueName('wake');
    // A block far longer than the waits below: only CLIENT UNBLOCK can end it in time.
    const sink = await a.newSink(sinkName, { blockMs: 120_000 });
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'the read blocked' });
      await sink.addStream(b);
      const b1 = await b.add('e', 'b1');
      const [first] = await take(it, 1, 5000);
      expect(first?.id).toBe(b1);
      await first?.ack();

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

  it('when CLIENT UNBLOCK is refused, addStream replaces the blocked read and the new stream is read at once', async () => {
    const tag = uniqueName('t');
    const a = new Stream(`{${tag}}a`, c.redis);
    const b = new Stream(`{${tag}}b`, c.redis);
    const sinkName = uniqueName('refused');
    const sink = await a.newSink(sinkName, { blockMs: 120_000 });
    const masters = await cluster.masters();
    try {
      const it = sink.subscribe()[Symbol.asyncIterator]();
      await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'the read blocked' });
      for (const m of masters) await rawCommand(m.port, 'ACL SETUSER default -client|unblock');
      await sink.addStream(b);
      const b1 = await b.add('e', 'b1');
      const [first] = await take(it, 1, 5000);
      expect(first?.id).toBe(b1);
      await first?.ack();
      // The replaced read's connection is closed: one blocked read of the sink is left.
      await waitFor(async () => (await blockedReads(sinkName)) === 1, { timeout: 10_000, what: 'one read blocked' });
    } finally {
      for (const m of masters) await rawCommand(m.port, 'ACL SETUSER default +@all');
      await sink.close();
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });
});
