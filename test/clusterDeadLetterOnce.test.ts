/**
 * A dead letter on a Redis Cluster is two idempotent steps, the XADD to the
 * dead-letter stream (on another master here) then the XACK in the source
 * stream (SEMANTICS.md section 6): in both briefly, never in neither, and
 * without a fault, in the dead-letter stream once (outside review E). Checks,
 * with both clients, for the max-deliveries move of the claims and for
 * `process()` dead-lettering an event that does not decode:
 * - a dead-letter node slow for several grace periods (its writes paused,
 *   ordinary slowness, section 9) with two instances: the one moving the
 *   event keeps it, the other does not claim and move it a second time;
 * - a failover of the source stream's master between the XADD and the XACK
 *   (the replica caught up: the event is still pending on the promoted
 *   master): the XACK is retried through the failover, the event is not
 *   moved a second time.
 * One cluster for the file: a killed master is restarted and rejoins as a
 * replica, so that the next failover test finds a master with one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Logger, readDeadLetters, type StandardSchemaV1, Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, type ClientKind, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { RedisCluster, rawCommandBulk, waitReplicated } from './support/redisCluster.js';
import { type RedisServer, rawCommand } from './support/redisServer.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

const GRACE = 400;
/**
 * The stream `t.s` typed with a schema that refuses every event once
 * `release()` is called: `process()` dead-letters the event then, at a
 * moment the test chose (the dead-letter node paused first), with nothing
 * added meanwhile. `asked` resolves once the schema was asked.
 */
function refusing(t: Setup): { typed: Stream<{ poison: unknown }>; asked: Promise<void>; release: () => void } {
  let release = (): void => {};
  const gate = new Promise<void>((r) => (release = r));
  let asked = (): void => {};
  const wasAsked = new Promise<void>((r) => (asked = r));
  const validate = async (): Promise<unknown> => {
    asked();
    await gate;
    return { issues: [{ message: 'refused' }] };
  };
  const schema = { '~standard': { version: 1, vendor: 'test', validate } } as unknown as StandardSchemaV1;
  const typed = new Stream(t.s.name, t.c.redis, { maxLen: 0, logger: t.logger, codec: 'json', schemas: { poison: schema } });
  return { typed, asked: wasAsked, release };
}

/** Whether a client of `node` is held on `cmd` (blocked by CLIENT PAUSE). */
async function heldOn(node: RedisServer, cmd: string): Promise<boolean> {
  const list = await rawCommandBulk(node.port, 'CLIENT LIST');
  return list.split('\n').some((l) => l.includes(`cmd=${cmd} `) && / flags=\S*b/.test(l));
}

async function hasReplica(node: RedisServer): Promise<boolean> {
  return (await rawCommandBulk(node.port, 'INFO replication')).includes('connected_slaves:1');
}

interface Setup {
  c: TestClient;
  s: Stream;
  sinkName: string;
  master: RedisServer;
  deadMaster: RedisServer;
  logger: Logger;
  lines: ReturnType<typeof recordingLogger>['lines'];
}

/**
 * A stream whose dead-letter stream is on another master, the sink-wide keys
 * not on that one either (they would be held by its pause); with
 * `withReplica`, a source master with a replica in sync.
 */
async function setup(kind: ClientKind, withReplica: boolean): Promise<Setup> {
  const c = await connectCluster(kind, cluster);
  for (;;) {
    const name = uniqueName('dl');
    const sinkName = uniqueName('w');
    const master = await cluster.masterOf(slotOf(`pulse:stream:${name}`));
    const deadMaster = await cluster.masterOf(slotOf(`pulse:stream:${name}:dead`));
    if (master === deadMaster || (await cluster.masterOf(slotOf(`pulse:sink:${sinkName}`))) === deadMaster) continue;
    if (withReplica && !(await hasReplica(master))) continue;
    // A fresh or rejoined replica may still be syncing: in sync before anything is paused or killed.
    if (withReplica) await waitReplicated(master);
    const { logger, lines } = recordingLogger();
    const s = new Stream(name, c.redis, { maxLen: 0, logger });
    return { c, s, sinkName, master, deadMaster, logger, lines };
  }
}

async function pending(t: Setup): Promise<number> {
  return Number(((await t.c.cmd('XPENDING', t.s.key, t.sinkName)) as unknown[])[0]);
}

/** Done: nothing pending in the source, no dead-letter XADD held. Then the dead letters' source IDs. */
async function settled(t: Setup): Promise<string[]> {
  await waitFor(async () => (await pending(t)) === 0 && !(await heldOn(t.deadMaster, 'xadd')), {
    timeout: 20_000,
    what: 'the move done',
  });
  return (await readDeadLetters(t.s)).map((d) => d.sourceId);
}

function logged(t: Setup): string {
  return t.lines
    .filter((l) => l.level !== 'debug')
    .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`)
    .join('\n');
}

async function teardown(t: Setup, sinks: ReadonlyArray<{ close(): Promise<void> }>, loops: Promise<unknown>[]): Promise<void> {
  // A test that failed halfway leaves a node paused.
  for (const n of [t.deadMaster, t.master]) await rawCommand(n.port, 'CLIENT UNPAUSE').catch(() => {});
  await Promise.all(sinks.map((k) => k.close()));
  await Promise.all(loops.map((l) => l.catch(() => {})));
  await t.s.destroy().catch(() => {});
  await t.c.cmd('DEL', `pulse:stream:${t.s.name}:dead`).catch(() => {});
  await t.c.close();
}

/**
 * With the dead-letter XADD held on `deadMaster` (writes paused), holds the
 * XACK that follows on the source master, lets the replica catch up with
 * everything, kills the master and waits for its replica to take over; the
 * killed node is restarted to rejoin as a replica.
 */
async function failOverBeforeTheAck(t: Setup): Promise<void> {
  await waitFor(() => heldOn(t.deadMaster, 'xadd'), { timeout: 10_000, what: 'dead-letter XADD held' });
  await rawCommand(t.master.port, 'CLIENT PAUSE 60000 WRITE');
  await rawCommand(t.deadMaster.port, 'CLIENT UNPAUSE');
  await waitFor(() => heldOn(t.master, 'xack'), { timeout: 10_000, what: 'XACK held' });
  const replica = await cluster.replicaOf(t.master);
  if (!replica) throw new Error('no replica');
  const offset = (n: RedisServer, re: RegExp) => rawCommandBulk(n.port, 'INFO replication').then((i) => Number(re.exec(i)?.[1]));
  await waitFor(
    async () => (await offset(t.master, /master_repl_offset:(\d+)/)) === (await offset(replica, /slave_repl_offset:(\d+)/)),
    { timeout: 5000, what: 'replica caught up' },
  );
  await t.master.kill('SIGKILL');
  await cluster.waitHealthy();
  await t.master.restart();
}

describe.each(CLIENT_KINDS)('dead-lettered once on a cluster (%s)', (kind) => {
  it('max deliveries, two instances, the dead-letter node slow for grace periods: moved by one, once', async () => {
    const t = await setup(kind, false);
    const opts = { blockMs: 200, ackGracePeriodMs: GRACE, maxDeliveries: 1 };
    const sinks = [await t.s.newSink(t.sinkName, opts), await t.s.newSink(t.sinkName, opts)];
    const seen: string[] = [];
    const loops = sinks.map(async (sink) => {
      for await (const ev of sink) seen.push(ev.id); // never acks: dead-lettered after the grace period
    });
    try {
      const id = (await t.s.add('poison', 'x')) as string;
      await waitFor(() => seen.includes(id), { timeout: 5000, what: 'delivered' });
      // Writes of the dead-letter node held 2 s, 5 grace periods.
      await rawCommand(t.deadMaster.port, 'CLIENT PAUSE 2000 WRITE');
      await waitFor(() => heldOn(t.deadMaster, 'xadd'), { timeout: 5000, what: 'dead-letter XADD held' });
      expect({ dead: await settled(t), seen: seen.length }, logged(t)).toEqual({ dead: [id], seen: 1 });
    } finally {
      await teardown(t, sinks, loops);
    }
  }, 30_000);

  it('process(), an event that does not decode, two instances, the dead-letter node slow: moved by one, once', async () => {
    const t = await setup(kind, false);
    const { typed, asked, release } = refusing(t);
    const opts = { blockMs: 200, ackGracePeriodMs: GRACE };
    const sinks = [await typed.newSink(t.sinkName, opts), await typed.newSink(t.sinkName, opts)];
    // Two slots: whichever instance claims the event again (this one too) runs it at once, not after the move.
    const loops = sinks.map((sink) => sink.process(() => {}, { concurrency: 2 }));
    try {
      const id = (await t.s.add('poison', '"x"')) as string;
      await asked;
      // Writes of the dead-letter node held 2 s, 5 grace periods, before the schema refuses the event.
      await rawCommand(t.deadMaster.port, 'CLIENT PAUSE 2000 WRITE');
      release();
      await waitFor(() => heldOn(t.deadMaster, 'xadd'), { timeout: 5000, what: 'dead-letter XADD held' });
      expect(await settled(t), logged(t)).toEqual([id]);
    } finally {
      release();
      await teardown(t, sinks, loops);
    }
  }, 30_000);

  it('max deliveries, the source master fails over between the XADD and the XACK: acked after it, moved once', async () => {
    const t = await setup(kind, true);
    const sink = await t.s.newSink(t.sinkName, { blockMs: 200, ackGracePeriodMs: GRACE, maxDeliveries: 1 });
    const seen: string[] = [];
    const loop = (async () => {
      for await (const ev of sink) seen.push(ev.id); // never acks
    })();
    try {
      const id = (await t.s.add('poison', 'x')) as string;
      await waitFor(() => seen.includes(id), { timeout: 5000, what: 'delivered' });
      await rawCommand(t.deadMaster.port, 'CLIENT PAUSE 60000 WRITE');
      await failOverBeforeTheAck(t);
      expect(await settled(t), logged(t)).toEqual([id]);
      // Said as on a single node (moved by the client on a cluster, it went unsaid).
      const said = t.lines.filter((l) => l.msg === 'events dead-lettered after max deliveries');
      expect(
        said.flatMap((l) => (l.obj as { ids?: string[] }).ids ?? []),
        logged(t),
      ).toEqual([id]);
    } finally {
      await teardown(t, [sink], [loop]);
    }
  }, 60_000);

  it('process(), an event that does not decode, the source master fails over between the XADD and the XACK: moved once', async () => {
    const t = await setup(kind, true);
    const { typed, asked, release } = refusing(t);
    const sink = await typed.newSink(t.sinkName, { blockMs: 200, ackGracePeriodMs: GRACE });
    const loop = sink.process(() => {});
    try {
      const id = (await t.s.add('poison', '"x"')) as string;
      await asked;
      await rawCommand(t.deadMaster.port, 'CLIENT PAUSE 60000 WRITE');
      release();
      await failOverBeforeTheAck(t);
      expect(await settled(t), logged(t)).toEqual([id]);
    } finally {
      release();
      await teardown(t, [sink], [loop]);
    }
  }, 60_000);
});
