/**
 * On a cluster, Go Pulse's lifecycle record (`pulse:stream:<name>:lifecycle`,
 * no hash tag) lives on another node than its stream. Outside review A
 * (finding 1) froze that other node (SIGSTOP): the first add of a `Stream`
 * instance, stored and answered by the stream's healthy node, never resolved,
 * and every later add of the instance waited on it too. Checked here, both
 * clients: the first add resolves after a short wait for the record at most
 * (GO_LIFECYCLE_WAIT_MS), later adds do not wait at all, one warning says the
 * record is late, and the record is written in the background once the node
 * answers again. Also a client's very first add: ioredis then opens the
 * connection adds use, whose ready check could meet the frozen node and
 * never end. The node is held with `CLIENT PAUSE ... ALL` rather than
 * SIGSTOP: it answers no client, as when frozen, but its cluster bus goes on,
 * so the cluster is not declared down (node timeout 1 s) while the adds run,
 * which made every add fail with CLUSTERDOWN about half the time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { GO_LIFECYCLE_WAIT_MS } from '../packages/pulse-streaming/src/internal/goLifecycle.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { RedisCluster } from './support/redisCluster.js';
import { type RedisServer, rawCommand } from './support/redisServer.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start(3);
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
});

/** A stream name whose stream and lifecycle record have different masters. */
async function splitName(): Promise<{ name: string; lifeNode: RedisServer }> {
  for (;;) {
    const name = uniqueName('lifeFrozen');
    const streamNode = await cluster.masterOf(slotOf(`pulse:stream:${name}`));
    const lifeNode = await cluster.masterOf(slotOf(`pulse:stream:${name}:lifecycle`));
    if (streamNode !== lifeNode) return { name, lifeNode };
  }
}

/** How long a node is held: longer than each add below may take, so an add waiting on it fails its bound. */
const HOLD_MS = 3500;

/** Holds every client command of `node` (cluster bus untouched) for HOLD_MS; the pause ends by itself. */
async function hold(node: RedisServer): Promise<void> {
  await rawCommand(node.port, `CLIENT PAUSE ${HOLD_MS} ALL`);
}

// One node is frozen at a time: the tests run one after the other.
describe.each(CLIENT_KINDS)('adds while the lifecycle record node is frozen (%s)', (kind) => {
  it('the first add resolves after a bounded wait, later ones at once; the record is written once the node answers', async () => {
    await cluster.waitHealthy();
    const { name, lifeNode } = await splitName();
    const c = await connectCluster(kind, cluster);
    try {
      // Another instance's add opens every connection adds use (ioredis: the publishing one).
      await new Stream(name, c.redis).add('warm', 'w');
      await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
      const rec = recordingLogger();
      const s = new Stream(name, c.redis, { maxLen: 0, logger: rec.logger });
      await hold(lifeNode);
      {
        const t0 = Date.now();
        const first = await within(s.add('k', 'first'), GO_LIFECYCLE_WAIT_MS + 1500, 'the first add');
        expect(Date.now() - t0).toBeGreaterThanOrEqual(GO_LIFECYCLE_WAIT_MS - 50);
        // Not waiting for the record, nor trying it again per add.
        const ids = await within(
          Promise.all([s.add('k', 'second'), s.add('k', 'third')]),
          GO_LIFECYCLE_WAIT_MS - 100,
          'later adds',
        );
        expect([first, ...ids].every((id) => typeof id === 'string')).toBe(true);
        const warned = rec.lines.filter((l) => l.level === 'warn');
        expect(warned).toEqual([
          expect.objectContaining({ obj: expect.objectContaining({ key: `pulse:stream:${name}:lifecycle` }) }),
        ]);
        expect(warned[0]?.msg).toMatch(/retrying in the background/);
      }
      await waitFor(async () => Number(await c.cmd('EXISTS', `pulse:stream:${name}:lifecycle`)) === 1, {
        timeout: 15_000,
        interval: 100,
        what: 'the record written in the background',
      });
      expect(Number(await c.cmd('XLEN', `pulse:stream:${name}`))).toBe(4);
      await c.cmd('DEL', `pulse:stream:${name}`);
      await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
    } finally {
      await c.close();
    }
  }, 60_000);

  // ioredis only: node-redis adds go on the user's client, no connection is opened for them.
  it.runIf(kind === 'ioredis')(
    "a client's first add ever (no connection for adds open yet) resolves too",
    async () => {
      await cluster.waitHealthy();
      const { name, lifeNode } = await splitName();
      const c = await connectCluster(kind, cluster);
      try {
        const s = new Stream(name, c.redis, { maxLen: 0 });
        await hold(lifeNode);
        {
          // ioredis opens its connection for adds now: its ready check (CLUSTER INFO to a random
          // node, no timeout) could meet the frozen node and never end.
          const id = await within(s.add('k', 'cold'), GO_LIFECYCLE_WAIT_MS + 2000, 'the first add');
          expect(typeof id).toBe('string');
        }
        await waitFor(async () => Number(await c.cmd('EXISTS', `pulse:stream:${name}:lifecycle`)) === 1, {
          timeout: 15_000,
          interval: 100,
          what: 'the record written in the background',
        });
        await c.cmd('DEL', `pulse:stream:${name}`);
        await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
      } finally {
        await c.close();
      }
    },
    60_000,
  );
});
