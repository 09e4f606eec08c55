/**
 * Outside review AO (defect 1; line numbers as of commit 39622e4): a sink whose connections come
 * back while its slot migrates stops delivering until the migration ends.
 * Failed before the fix: 2 of 2 (both clients; m1 never delivered while the slot migrated). The
 * trim case is not the review's: it failed for ioredis (the sink read nothing more after the kill),
 * node-redis read on there.
 * Fixed: a stream due for a resync in a slot that refuses checked reads is resynced by a check of
 * its key alone (migratingRead.ts `resyncAlone`), then read one by one as the others.
 *
 * The review's description: defect 1: a sink whose connection drops (any reconnect, or a node change counted by
 * `#noteReconnect`) while its slot migrates stops delivering until the migration ends. Every stream
 * becomes untrusted (a resync is due); the resync is a checked read, which Redis refuses while the
 * slot migrates, and `readOneByOne` (migratingRead.ts) skips untrusted streams and rethrows the
 * refusal: the loop backs off and retries for as long as the migration stays open, while a reader
 * reads on.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { RedisCluster } from './support/redisCluster.js';
import type { RedisServer } from './support/redisServer.js';
import { revAOKill, revAOStart } from './support/slotMigration.js';

const run = promisify(execFile);

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

describe.each(CLIENT_KINDS)('a sink that reconnects while its slot migrates (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connectCluster(kind, cluster);
  });
  afterAll(() => c?.close());

  it('delivers an event added after its connections came back, while the slot still migrates, as a reader does', async () => {
    const { logger } = recordingLogger();
    const s = new Stream(uniqueName('aor'), c.redis, { logger });
    const sink = await s.newSink(uniqueName('aors'), { blockMs: 300 });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 300 });
    const bySink: string[] = [];
    const byReader: string[] = [];
    const consumers = [
      (async () => {
        for await (const ev of sink) {
          bySink.push(ev.id);
          ev.ack().catch(() => {});
        }
      })(),
      (async () => {
        for await (const ev of reader) byReader.push(ev.id);
      })(),
    ];
    let finish: (() => Promise<void>) | undefined;
    try {
      const a0 = await s.add('e', 'a0');
      await waitFor(() => bySink.includes(a0), { timeout: 5000, what: 'a0 delivered' });
      const slot = slotOf(s.key);
      const from = await cluster.masterOf(slot);
      const to = (await cluster.masters()).find((m) => m !== from) as RedisServer;
      finish = await revAOStart(cluster, slot, from, to);
      const m0 = await s.add('e', 'm0');
      // The fix of review AL holds: delivered while the slot migrates.
      await waitFor(() => bySink.includes(m0), { timeout: 10_000, what: 'm0 delivered while the slot migrates' });
      // A network blip: the sink's connections drop and come back (the slot still migrates).
      expect(await revAOKill(cluster, sink.name)).toBeGreaterThan(0);
      const m1 = await s.add('e', 'm1');
      await waitFor(() => byReader.includes(m1), { timeout: 5000, what: 'm1 read by the reader' });
      await waitFor(() => bySink.includes(m1), {
        timeout: 10_000,
        what: 'm1 delivered by the sink after its reconnect, while the slot migrates (it waits for the migration to end)',
      });
      expect(bySink).toEqual([a0, m0, m1]);
    } finally {
      await finish?.().catch(() => {});
      await sink.close();
      await reader.close();
      await Promise.all(consumers).catch(() => {});
      await s.destroy().catch(() => {});
    }
  }, 40_000);

  // After the reconnect's resync (a check of the stream's key alone), the unchecked reads are
  // verified once the migration ended: entries trimmed meanwhile are counted once, none falsely.
  it('entries trimmed after its reconnect, the slot migrating, are counted once after the migration', async () => {
    const s = new Stream(uniqueName('aorl'), c.redis, { maxLen: 0 });
    const sink = await s.newSink(uniqueName('aorls'), { blockMs: 300, maxPolled: 20, bufferSize: 20 });
    const bySink = new Set<string>();
    let deliveries = 0;
    const consumer = (async () => {
      for await (const ev of sink) {
        bySink.add(ev.id);
        deliveries++;
        await new Promise((r) => setTimeout(r, 3));
        ev.ack().catch(() => {});
      }
    })();
    let finish: (() => Promise<void>) | undefined;
    try {
      const n = 600;
      for (let i = 0; i < n; i++) await s.add('e', `v${i}`);
      await waitFor(() => bySink.size >= 50, { timeout: 5000, what: 'the sink started on the backlog' });
      const slot = slotOf(s.key);
      const from = await cluster.masterOf(slot);
      const to = (await cluster.masters()).find((m) => m !== from) as RedisServer;
      finish = await revAOStart(cluster, slot, from, to);
      expect(await revAOKill(cluster, sink.name)).toBeGreaterThan(0);
      const atKill = bySink.size;
      // Past what its buffers and the reads out at the kill held (about 45: not a read after the reconnect).
      await waitFor(() => bySink.size >= atKill + 150, { timeout: 10_000, what: 'the sink read on after its reconnect' });
      // Trimmed where the keys are now (ASKING: the slot is still the old master's).
      await run('sh', ['-c', `printf 'ASKING\\nXTRIM %s MAXLEN 0\\n' '${s.key}' | redis-cli -p ${to.port}`]);
      await finish();
      finish = undefined;
      await waitFor(() => bySink.size + sink.counters.lost >= n, {
        timeout: 15_000,
        what: 'every event handled or counted lost',
      });
      expect(sink.counters.lost).toBeGreaterThan(0);
      await sink.close();
      expect(bySink.size + sink.counters.lost).toBe(n);
      expect(deliveries).toBe(bySink.size);
    } finally {
      await finish?.().catch(() => {});
      await sink.close();
      await consumer.catch(() => {});
      await s.destroy().catch(() => {});
    }
  }, 60_000);
});
