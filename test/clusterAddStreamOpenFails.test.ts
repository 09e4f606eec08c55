/**
 * On a Redis Cluster a sink or reader reads each hash slot on a connection
 * of its own, opened when `addStream` brings the first stream of a slot.
 * When that connection cannot open (here: every node refuses new
 * connections, `maxclients` reached), `addStream` rejects, and the stream
 * must not count as read: the caller's retry reads it.
 * Failed before the fix: the stream stayed registered though no loop read it, the retry returned at
 * once, and its event never came (4 of 4: sink and reader, both clients).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulseError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take } from './support/clients.js';
import { connectCluster, namesInDistinctSlots } from './support/clusterClients.js';
import { RedisCluster } from './support/redisCluster.js';

let cluster: RedisCluster;
/** One connection per node, opened before any limit: the limit is lifted over them. */
const admins: Redis[] = [];
const maxclients: string[] = [];
beforeAll(async () => {
  cluster = await RedisCluster.start();
  for (const n of cluster.nodes) {
    const r = new Redis(n.port);
    admins.push(r);
    maxclients.push(String(((await r.config('GET', 'maxclients')) as string[])[1]));
  }
}, 60_000);
afterAll(async () => {
  for (const r of admins) r.disconnect();
  await cluster?.stop();
});

/** Every node refuses connections past those open now, until `lift()`. */
async function refuseNewConnections(): Promise<void> {
  for (const r of admins) {
    const connected = Number(/connected_clients:(\d+)/.exec(await r.info('clients'))?.[1]);
    await r.config('SET', 'maxclients', String(connected));
  }
}

async function lift(): Promise<void> {
  for (const [i, r] of admins.entries()) await r.config('SET', 'maxclients', maxclients[i] as string);
}

describe.each(CLIENT_KINDS)('addStream on a cluster whose read connection cannot open (%s)', (kind) => {
  for (const what of ['sink', 'reader'] as const) {
    it(`${what}: addStream rejects, and the retry reads the stream`, async (ctx) => {
      const c = await connectCluster(kind, cluster);
      ctx.onTestFinished(() => c.close());
      const [a, b] = namesInDistinctSlots(2, 'openfail') as [string, string];
      const first = new Stream(a, c.redis, { maxLen: 0 });
      const second = new Stream(b, c.redis, { maxLen: 0 });
      ctx.onTestFinished(async () => {
        await first.destroy();
        await second.destroy();
      });
      // Both slots' nodes known to the user's client before the limit: only the new read connection is refused.
      await second.add('e', 'x');
      const consumer =
        what === 'sink'
          ? await first.newSink('g', { startAt: 'oldest', blockMs: 100 })
          : await first.newReader({ startAt: 'oldest', blockMs: 100 });
      ctx.onTestFinished(() => consumer.close());
      const sub = consumer.subscribe();
      // The user's client may open a connection of its own under the limit (ioredis refreshing its
      // view of the slots), failing the add before its read connection: nothing is registered then, so
      // it is tried again until the read connection is what failed.
      let failed: unknown;
      for (let i = 0; i < 5; i++) {
        failed = undefined;
        // The user's client warmed up (slots known, a connection to each stream's node) before the limit.
        await c.cmd('XLEN', first.key);
        await c.cmd('XLEN', second.key);
        await refuseNewConnections();
        try {
          await consumer.addStream(second, { startAt: 'oldest' });
        } catch (err) {
          failed = err;
        } finally {
          await lift();
        }
        if (failed === undefined || /open connection/.test(String(failed))) break;
      }
      expect(failed).toBeInstanceOf(PulseError);
      expect(String(failed)).toMatch(/open connection/);
      await consumer.addStream(second, { startAt: 'oldest' });
      const [ev] = await take(sub, 1, 10_000);
      expect(ev?.streamName).toBe(b);
      if (ev !== undefined && 'ack' in ev) await (ev as SinkEvent).ack();
    }, 30_000);
  }
});
