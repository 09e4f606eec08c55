/**
 * The wire additions on a Redis Cluster, with both clients: headers (lone
 * and merged adds, dead letters moved across slots and replayed), dedup
 * (keys in the stream's slot, across clients), and trace context through
 * the stream.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { SpanKind } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readDeadLetters, replayDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { compareIds } from '../packages/pulse-streaming/src/internal/ids.js';
import { dedupKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { CLIENT_KINDS, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { connectCluster } from './support/clusterClients.js';
import { startSdk, type TestSdk } from './support/otelSdk.js';
import { RedisCluster } from './support/redisCluster.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 60_000);
afterAll(() => cluster?.stop());

/** A stream name whose dead-letter stream sits in another slot. */
function nameWithDeadElsewhere(): string {
  for (;;) {
    const name = uniqueName('hc');
    if (slotOf(`pulse:stream:${name}`) !== slotOf(`pulse:stream:${name}:dead`)) return name;
  }
}

describe.each(CLIENT_KINDS)('wire additions on Redis Cluster (%s)', (kind) => {
  let c: TestClient;
  let sdk: TestSdk | undefined;
  beforeAll(async () => {
    c = await connectCluster(kind, cluster);
  });
  afterAll(() => c?.close());
  afterEach(async () => {
    await sdk?.shutdown();
    sdk = undefined;
  });

  it('headers travel through lone and merged adds, a dead letter moved across slots, and its replay', async () => {
    const s = new Stream(nameWithDeadElsewhere(), c.redis);
    const sink = await s.newSink('dl', { blockMs: 100, ackGracePeriodMs: 100, maxDeliveries: 1 });
    const sub = sink.subscribe();
    const lone = await s.add('lone', 'x', { headers: { a: '1' } });
    const merged = await Promise.all([
      s.add('m', '1', { headers: { b: '2' } }),
      s.add('m', '2'),
      s.add('m', '3', { headers: { c: '3' } }),
    ]);
    // In ID order: with a 100 ms grace a starved host (event loop stalls over 1 s seen in loaded runs)
    // can release the first event held behind the idle subscriber and deliver it after the others.
    const got = (await take(sub, 4)).sort((a, b) => compareIds(a.id, b.id));
    expect(got.map((ev) => ev.id)).toEqual([lone, ...merged]);
    expect(got.map((ev) => ev.headers)).toEqual([{ a: '1' }, { b: '2' }, {}, { c: '3' }]);
    await sink.ack(...got.slice(1));
    // The first is never acked: dead-lettered in two steps (another slot).
    const [letter] = await waitFor(
      async () => {
        const dead = await readDeadLetters(s);
        return dead.length > 0 ? dead : undefined;
      },
      { timeout: 10_000, what: 'dead letter' },
    );
    expect(letter?.sourceId).toBe(lone);
    expect(letter?.headers).toEqual({ a: '1' });
    const [replayed] = await replayDeadLetters(s);
    const [again] = await take(sub, 1);
    expect(again?.id).toBe(replayed);
    expect(again?.headers).toEqual({ a: '1' });
    await again?.ack();
    await sink.close();
    await s.destroy();
    await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
  });

  it("dedup holds on a cluster: its keys sit in the stream's slot, a repeat gets the first ID, destroy() removes them", async () => {
    const s = new Stream(uniqueName('hc'), c.redis);
    const keys = dedupKeys(s.name);
    expect(slotOf(keys.current)).toBe(slotOf(s.key));
    expect(slotOf(keys.old)).toBe(slotOf(s.key));
    const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => s.add('e', String(i), { dedupId: `d${i % 20}` })));
    for (let i = 20; i < 60; i++) expect(ids[i]).toBe(ids[i % 20]);
    expect(await s.add('e', 'again', { dedupId: 'd3' })).toBe(ids[3]);
    expect(Number(await c.cmd('XLEN', s.key))).toBe(20);
    await s.destroy();
    expect(Number(await c.cmd('EXISTS', keys.current))).toBe(0);
    expect(Number(await c.cmd('EXISTS', keys.old))).toBe(0);
  });

  it('a process span shares the trace of the send span on a cluster', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName('hc'), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    const id = await s.add('e', 'x');
    const ac = new AbortController();
    await sink.process(
      (_ev: SinkEvent) => {
        ac.abort();
      },
      { signal: ac.signal },
    );
    const [send] = sdk.named(`send ${s.name}`);
    const [proc] = sdk.named(`process ${s.name}`);
    expect(send?.attributes['messaging.message.id']).toBe(id);
    expect(proc?.kind).toBe(SpanKind.CONSUMER);
    expect(proc?.spanContext().traceId).toBe(send?.spanContext().traceId);
    expect(proc?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
    await sink.close();
    await s.destroy();
  });
});

describe('dedup on a cluster across processes', () => {
  it('two processes (one per client) adding the same dedupIds at once get the same IDs, each stored once', async () => {
    const repo = resolve(import.meta.dirname, '..');
    const name = uniqueName('hp');
    const count = 100;
    const clusterPorts = cluster.rootNodes.map((n) => n.port);
    const children = CLIENT_KINDS.map((kind) => {
      const cfg = {
        lib: join(repo, 'packages/pulse-streaming/dist/esm'),
        clusterPorts,
        kind,
        stream: name,
        mode: 'dedup',
        count,
      };
      const child = spawn(process.execPath, [join(repo, 'test/support/wireChild.mjs'), JSON.stringify(cfg)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines: Array<Record<string, unknown>> = [];
      createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
      // 'close': after the last line is read ('exit' may come before).
      const exited = new Promise<void>((r) => child.on('close', () => r()));
      return { child, lines, exited };
    });
    try {
      await waitFor(() => children.every((ch) => ch.lines.some((l) => l.type === 'ready')), {
        timeout: 15_000,
        what: 'children ready',
      });
      for (const ch of children) ch.child.stdin?.write('go\n');
      await Promise.all(children.map((ch) => ch.exited));
      for (const ch of children) expect(ch.lines.filter((l) => l.type === 'error')).toEqual([]);
      const [x, y] = children.map((ch) => ch.lines.find((l) => l.type === 'ids') as { merged: string[]; sequential: string[] });
      expect(x?.merged).toEqual(y?.merged);
      expect(x?.sequential).toEqual(x?.merged);
      expect(y?.sequential).toEqual(x?.merged);
      expect(new Set(x?.merged).size).toBe(count);
      const c = await connectCluster('ioredis', cluster);
      try {
        expect(Number(await c.cmd('XLEN', `pulse:stream:${name}`))).toBe(count);
        await new Stream(name, c.redis).destroy();
      } finally {
        await c.close();
      }
    } finally {
      for (const ch of children) ch.child.kill('SIGKILL');
    }
  });
});
