/**
 * The `pulse-streaming` command-line program on a real Redis Cluster, run as
 * the built binary pointed at one node: every command follows each key to
 * its master, and `streams` scans every master.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkRegistryKey } from '../packages/pulse-streaming/src/internal/keys.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { buildCli, cli, lines, noStack } from './support/cli.js';
import { type TestClient, take, uniqueName } from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { RedisCluster } from './support/redisCluster.js';

beforeAll(buildCli, 120_000);

describe.concurrent('pulse-streaming CLI on a Redis Cluster', { timeout: 90_000 }, () => {
  let cluster: RedisCluster;
  let c: TestClient;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
    c = await connectCluster('ioredis', cluster);
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    await cluster?.stop();
  });

  const urlOf = (port: number): string => `redis://127.0.0.1:${port}`;
  const masterPort = async (key: string): Promise<number> => (await cluster.masterOf(slotOf(key))).port;
  /** A node that is not the master of `key`'s slot, so the CLI has to route to it. */
  const elsewhere = async (key: string): Promise<string> => {
    const master = await masterPort(key);
    const other = cluster.nodes.find((n) => n.port !== master);
    if (!other) throw new Error('no other node');
    return urlOf(other.port);
  };
  /** A new stream name whose stream and dead-letter stream live on different masters. */
  const splitName = async (): Promise<string> => {
    for (;;) {
      const name = uniqueName('clic');
      if ((await masterPort(`pulse:stream:${name}`)) !== (await masterPort(`pulse:stream:${name}:dead`))) return name;
    }
  };

  it('lists the streams of every master, and shows a stream with its sink, consumers and pending events', async ({ expect }) => {
    // Streams until two masters hold at least one each.
    const byMaster = new Map<number, string>();
    while (byMaster.size < 2) {
      const name = uniqueName('clic');
      byMaster.set(await masterPort(`pulse:stream:${name}`), name);
    }
    const names = [...byMaster.values()];
    const streams = names.map((n) => new Stream(n, c.redis));
    const [main] = streams as [Stream];
    const ids = await Promise.all(streams.map((s) => s.add('created', 'x')));
    const sink = await main.newSink('billing', { startAt: 'oldest', blockMs: 200, ackGracePeriodMs: 30_000 });
    try {
      const [held] = await take(sink.subscribe(), 1, 10_000);
      expect(held?.id).toBe(ids[0]);
      const url = urlOf([...byMaster.keys()][0] ?? 0);

      const r = await cli(['streams', '--json'], { redis: url });
      expect(r.code, r.stderr).toBe(0);
      const listed = JSON.parse(r.stdout) as Array<{ name: string; length: number; sinks: string[] }>;
      expect(listed.filter((s) => names.includes(s.name)).sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name))).toEqual(
        names.map((name, i) => expect.objectContaining({ name, length: 1, sinks: i === 0 ? ['billing'] : [] })),
      );

      const one = await cli(['stream', main.name, '--json'], { redis: await elsewhere(main.key) });
      expect(one.code, one.stderr).toBe(0);
      const details = JSON.parse(one.stdout) as { length: number; sinkDetails: Array<Record<string, unknown>> };
      expect(details.length).toBe(1);
      expect(details.sinkDetails).toEqual([
        expect.objectContaining({
          name: 'billing',
          pending: 1,
          consumers: [expect.objectContaining({ name: sink.consumerName, pending: 1, keepAliveAgeMs: expect.any(Number) })],
        }),
      ]);
      // Both times come from the stream's master: an age, not a clock difference between nodes.
      const consumers = details.sinkDetails[0]?.consumers as Array<{ keepAliveAgeMs: number }> | undefined;
      expect(consumers?.[0]?.keepAliveAgeMs).toBeGreaterThanOrEqual(0);
      expect(consumers?.[0]?.keepAliveAgeMs).toBeLessThan(60_000);

      // Forced with --cluster instead of detected.
      const forced = await cli(['--cluster', 'pending', main.name, 'billing', '--json'], { redis: await elsewhere(main.key) });
      expect(forced.code, forced.stderr).toBe(0);
      expect(JSON.parse(forced.stdout)).toMatchObject({
        total: 1,
        consumers: [{ name: sink.consumerName, pending: 1 }],
        entries: [expect.objectContaining({ id: ids[0], consumer: sink.consumerName, deliveries: 1 })],
      });
    } finally {
      await sink.close();
      await Promise.all(streams.map((s) => s.destroy()));
    }
  });

  it('adds events through any node and tails them', async ({ expect }) => {
    const name = uniqueName('clic');
    const redis = await elsewhere(`pulse:stream:${name}`);
    try {
      const a = await cli(['add', name, 'created', '{"order":1}', '--topic', 'eu', '--json'], { redis });
      expect(a.code, a.stderr).toBe(0);
      const { id } = JSON.parse(a.stdout) as { id: string };
      const b = await cli(['add', name, 'deleted', 'plain'], { redis });
      expect(b.code, b.stderr).toBe(0);
      expect(await c.cmd('XLEN', `pulse:stream:${name}`)).toBe(2);

      const tail = await cli(['tail', name, '--from', 'oldest', '--count', '2', '--json'], { redis });
      expect(tail.code, tail.stderr).toBe(0);
      expect(lines(tail.stdout).map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
        expect.objectContaining({ id, event: 'created', topic: 'eu', payload: '{"order":1}' }),
        expect.objectContaining({ id: b.stdout.trim(), event: 'deleted', payload: 'plain' }),
      ]);
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('lists and replays dead letters kept on another master', async ({ expect }) => {
    const name = await splitName();
    const key = `pulse:stream:${name}`;
    const deadKey = `${key}:dead`;
    await c.cmd('XADD', key, '*', 'n', 'first', 'p', 'x');
    const meta = ['source_stream', name, 'source_sink', 'billing', 'source_id', '1-1', 'deliveries', '5', 'reason', 'gave up'];
    const dead = String(await c.cmd('XADD', deadKey, '*', 'n', 'poison', 'p', 'bad', ...meta));
    const redis = await elsewhere(key);
    try {
      const list = await cli(['dead', 'list', name, '--json'], { redis });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([
        expect.objectContaining({
          id: dead,
          event: 'poison',
          sourceSink: 'billing',
          sourceId: '1-1',
          deliveries: 5,
          reason: 'gave up',
        }),
      ]);
      const show = await cli(['dead', 'show', name, dead, '--json'], { redis });
      expect(show.code, show.stderr).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({ id: dead, encoding: 'utf8', payload: 'bad' });

      const replay = await cli(['dead', 'replay', name, '--json'], { redis });
      expect(replay.code, replay.stderr).toBe(0);
      expect(JSON.parse(replay.stdout)).toMatchObject({ replayed: 1 });
      expect(await c.cmd('XLEN', key)).toBe(2);
      expect(await c.cmd('XLEN', deadKey)).toBe(0);
    } finally {
      await c.cmd('DEL', key);
      await c.cmd('DEL', deadKey);
    }
  });

  it("destroys a stream with the library's bookkeeping and keeps its dead letters", async ({ expect }) => {
    const name = await splitName();
    const stream = new Stream(name, c.redis);
    const deadKey = `${stream.key}:dead`;
    await stream.add('e', 'p');
    const sink = await stream.newSink('billing', { blockMs: 200 });
    await sink.close();
    await c.cmd('XADD', deadKey, '*', 'n', 'poison', 'p', 'bad', 'source_stream', name);
    expect(await c.cmd('EXISTS', sinkRegistryKey(name))).toBe(1);
    const redis = await elsewhere(stream.key);
    try {
      const done = await cli(['destroy', name, '--yes', '--json'], { redis });
      expect(done.code, done.stderr).toBe(0);
      expect(JSON.parse(done.stdout)).toEqual({ destroyed: name });
      expect(await c.cmd('EXISTS', stream.key)).toBe(0);
      expect(await c.cmd('EXISTS', sinkRegistryKey(name))).toBe(0);
      expect(await c.cmd('XLEN', deadKey)).toBe(1);

      const again = await cli(['destroy', name, '--yes'], { redis });
      expect(again.code, again.stderr).toBe(1);
      expect(lines(again.stderr)).toEqual([expect.stringContaining('does not exist')]);
    } finally {
      await c.cmd('DEL', stream.key);
      await c.cmd('DEL', deadKey);
    }
  });

  it('runs the demo on a cluster: consumer processes on cluster clients, one killed, nothing lost', async ({ expect }) => {
    const redis = urlOf(cluster.nodes[0]?.port ?? 0);
    const r = await cli(['demo', '--duration', '2', '--rate', '100', '--json'], { redis, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { stream: string };
    expect(summary).toMatchObject({
      published: 200,
      handledUnique: 200,
      readerReceived: 200,
      lost: 0,
      killed: { consumer: expect.stringMatching(/^consumer-\d$/) },
    });
    // No key of its stream left for good on any node (Go's lifecycle record, in another slot,
    // included); the destroy's obituary for the sink expires by itself (10 minutes, README).
    const left: string[] = [];
    for (const m of await cluster.masters()) {
      const node = new Redis(m.port);
      try {
        let cursor = '0';
        do {
          const [next, keys] = (await node.scan(cursor, 'MATCH', `*${summary.stream}*`, 'COUNT', 1000)) as [string, string[]];
          cursor = next;
          for (const k of keys) if ((await node.pttl(k)) === -1) left.push(k);
        } while (cursor !== '0');
      } finally {
        node.disconnect();
      }
    }
    expect(left).toEqual([]);
    // A database index is refused on a cluster, before anything runs.
    const db = await cli(['streams'], { redis: `${redis}/2` });
    expect(db.code, db.stderr).toBe(1);
    expect(lines(db.stderr)).toEqual([expect.stringContaining('has only database 0: remove /2 from the URL')]);
  }, 90_000);

  it('refuses --cluster on a server that is not a cluster node, in one line', async ({ expect }) => {
    const r = await cli(['--cluster', 'streams']);
    expect(r.code, r.stderr).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringContaining('cluster support disabled')]);
    expect(noStack(r.stderr)).toBe(true);
  });
});
