/**
 * Outside review AO (defect 4; line numbers as of commit 39622e4): a clean failover (~100 ms, CLUSTER
 * FAILOVER) while a sink's read loop is paused (its buffer full of events that short blocking reads
 * brought, so its next read is a blocking one). No read is blocked on the old master (no UNBLOCKED),
 * no connection drops, and the cluster client follows the next read's MOVED without a word (both
 * clients do for a plain command): nothing counted a node change (`SinkReads.#reconnectsNow` saw none,
 * the node watch of loops.ts only looks at blocked reads), and the next checks trusted the promoted
 * replica's entries-read of the group (not replicated in Redis 7.0: review W's case). 7 handled events
 * were counted lost ("events trimmed before this sink read them"), nothing being trimmed. Without the
 * failover the test passes.
 * Failed before the fix: 2 of 2 runs, both clients (lost 7 each time).
 * Fixed: after each read's and check's reply, the slot's master as the sending connection's client sees
 * it is compared with the master of the last reply there, and a change counts as a node change, so the
 * checks made before it count nothing and the next one resyncs (slotOwners.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, recordingLogger, stays, uniqueName, waitFor } from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { RedisCluster, rawCommandBulk } from './support/redisCluster.js';

let cluster: RedisCluster;
beforeAll(async () => {
  // Setup, not an assertion: a CLUSTER FAILOVER before the replicas' first sync takes ~3 s (and then
  // this case passes); once every replica has synced it takes ~100 ms, as on a settled cluster in
  // production. This file slept 8 s for it.
  cluster = await RedisCluster.start(3, { synced: true });
}, 60_000);
afterAll(() => cluster?.stop());

describe.each(CLIENT_KINDS)('a failover while the sink is paused (%s)', (kind) => {
  it('no false loss after a clean failover under a sink whose buffer is full of events read by blocking reads', async (ctx) => {
    const c = await connectCluster(kind, cluster);
    const { logger, lines } = recordingLogger();
    let name = uniqueName('aofp');
    while (
      !(await rawCommandBulk((await cluster.masterOf(slotOf(`pulse:stream:${name}`))).port, 'INFO replication')).includes(
        'connected_slaves:1',
      )
    )
      name = uniqueName('aofp');
    const s = new Stream(name, c.redis, { logger });
    const sink = await s.newSink(uniqueName('aofps'), { blockMs: 300, bufferSize: 5, maxPolled: 50 });
    const handled = new Set<string>();
    let gate: Promise<void> | undefined;
    let open: () => void = () => {};
    const consumer = (async () => {
      for await (const ev of sink) {
        handled.add(ev.id);
        if (gate) await gate;
        ev.ack().catch(() => {});
      }
    })();
    try {
      const ids: string[] = [];
      ids.push(await s.add('e', 'a0'));
      await waitFor(() => handled.has(ids[0] as string), { timeout: 5000, what: 'a0' });
      gate = new Promise((r) => {
        open = r;
      });
      ids.push(await s.add('e', 'hold'));
      await waitFor(() => handled.size === 2, { timeout: 5000, what: 'held' });
      // One by one: each comes back in a short blocking read, until the buffer is full.
      for (let i = 0; i < 8; i++) {
        ids.push(await s.add('e', `t${i}`));
        await new Promise((r) => setTimeout(r, 100));
      }
      for (let i = 0; i < 100; i++) ids.push(await s.add('e', `b${i}`));
      // Without this failover the test passes (checked with both clients).
      const before = sink.counters.lost;
      const t0 = Date.now();
      const { clean } = await cluster.failover(slotOf(s.key));
      const took = Date.now() - t0;
      if (!clean) ctx.skip();
      gate = undefined;
      open();
      await waitFor(() => ids.every((id) => handled.has(id)), { timeout: 20_000, what: 'every event handled' });
      for (let i = 0; i < 20; i++) ids.push(await s.add('e', `c${i}`));
      await waitFor(() => ids.every((id) => handled.has(id)), { timeout: 20_000, what: 'every event handled' });
      const alarm = /Redis lost entries|may be lost|went back in time|created again|reading again from|trimmed or deleted/i;
      await stays(
        () => sink.counters.lost === 0 && !lines.some((l) => alarm.test(String(l.msg))),
        3000,
        'no loss counted, no alarm',
      ).catch((err) => {
        throw new Error(
          `${(err as Error).message}: lost ${sink.counters.lost} (${before} before the failover, which took ${took} ms); ${JSON.stringify(lines.filter((l) => l.level !== 'debug').map((l) => l.msg))}`,
        );
      });
      await sink.close();
      expect(sink.counters.lost).toBe(0);
    } finally {
      open();
      await sink.close();
      await consumer.catch(() => {});
      await s.destroy().catch(() => {});
      await c.close();
    }
  }, 60_000);
});
